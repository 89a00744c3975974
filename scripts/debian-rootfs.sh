#!/usr/bin/env bash
# A Debian root file system as a tarball, for a base image made without Docker Hub (FROM scratch + ADD).
#
#   scripts/debian-rootfs.sh OUTPUT.tar [SUITE]     (default suite: bookworm; does nothing if OUTPUT exists)
#
# mmdebstrap builds it from the machine's own apt sources, the way the official Debian images are made.
# SOURCE_DATE_EPOCH makes the tarball reproducible, so the base image's fingerprint only changes with it.
set -euo pipefail
out=${1:?usage: scripts/debian-rootfs.sh OUTPUT.tar [SUITE]}
suite=${2:-bookworm}
if [[ -s "$out" ]]; then
  echo "debian-rootfs.sh: $out is already there" >&2
  exit 0
fi
command -v mmdebstrap >/dev/null || { echo "debian-rootfs.sh: mmdebstrap is missing: run scripts/engine.sh install" >&2; exit 2; }
echo "debian-rootfs.sh: making a $suite root file system in $out (about half a minute)" >&2
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000} mmdebstrap --quiet --variant=minbase "$suite" "$out.partial"
mv "$out.partial" "$out"
