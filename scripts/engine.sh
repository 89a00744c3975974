#!/usr/bin/env bash
# The container tooling buildflow's tests and benchmarks need, from Debian packages.
#
#   scripts/engine.sh install   Docker Engine, buildx, the distribution registry and mmdebstrap (idempotent)
#
# bookworm has no buildx, so docker.io and docker-buildx come from the trixie suite of the same Debian archive,
# pinned low so that nothing else moves. The archive's address is read from the machine's own apt sources.
set -euo pipefail

TRIXIE_SOURCE=/etc/apt/sources.list.d/buildflow-trixie.sources
TRIXIE_PIN=/etc/apt/preferences.d/buildflow-trixie

log() { printf 'engine.sh: %s\n' "$*" >&2; }

have_tools() {
  docker buildx version >/dev/null 2>&1 && command -v dockerd >/dev/null && command -v docker-registry >/dev/null \
    && command -v mmdebstrap >/dev/null
}

debian_archive() {
  # The URIs line of the machine's Debian sources (deb822 or one-line format).
  local uri=""
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [[ -z "$uri" && -f /etc/apt/sources.list ]]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
  fi
  [[ -n "$uri" ]] || { log "no Debian apt source found: install docker.io and docker-buildx yourself"; exit 2; }
  printf '%s\n' "$uri"
}

add_trixie() {
  [[ -f "$TRIXIE_SOURCE" ]] && return
  printf 'Types: deb\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$(debian_archive)" > "$TRIXIE_SOURCE"
  printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' > "$TRIXIE_PIN"
}

install() {
  if have_tools; then log "docker, buildx, docker-registry and mmdebstrap are already installed"; return; fi
  [[ $(id -u) -eq 0 ]] || { log "installing needs root (apt-get); run: sudo $0 install"; exit 2; }
  add_trixie
  log "installing docker.io, docker-buildx (trixie), docker-registry and mmdebstrap"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t trixie docker.io docker-buildx >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry mmdebstrap >/dev/null
  have_tools || { log "installation finished but the tools are still missing"; exit 1; }
}

case "${1:-}" in
  install) install ;;
  *) printf 'usage: %s install\n' "$0" >&2; exit 2 ;;
esac
