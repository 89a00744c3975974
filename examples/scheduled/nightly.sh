#!/usr/bin/env bash
# Build the image hierarchy once: the one way every caller in this directory runs buildflow (cron, systemd,
# GitHub Actions, GitLab CI), so that a nightly run, a CI run and a run by hand behave alike.
#
#   examples/scheduled/nightly.sh                     the nightly run
#   examples/scheduled/nightly.sh --since HEAD~1      extra arguments go to `buildflow build` (here: only what
#                                                     changed since HEAD~1, and everything built on it)
#
# Environment: BUILDFLOW_FILE (default buildflow.yaml, relative to the repository root) and
# BUILDFLOW_MAX_AGE (default 7d). Reports are written under reports/ in the repository root.
# The exit code is buildflow's own: 0 success, 1 a target failed or the release was not tagged,
# 2 invalid pipeline or command line, 3 internal error, 4 another run holds the lock (only with --no-wait).
set -euo pipefail

# The repository this script is in, wherever it is called from (cron and systemd start elsewhere).
cd "$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)"
mkdir -p reports

exec buildflow build --file "${BUILDFLOW_FILE:-buildflow.yaml}" --keep-going --max-age "${BUILDFLOW_MAX_AGE:-7d}" \
  --wait --log-format json --report reports/buildflow.json --junit reports/junit.xml --summary reports/summary.md "$@"
