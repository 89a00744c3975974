#!/usr/bin/env bash
# A headless browser for the tests of buildflow's HTML report (make test runs this): Debian's chromium and a font.
#
#   scripts/browser.sh install      install Debian's chromium (and the DejaVu fonts) when missing (idempotent)
#   scripts/browser.sh path         print the browser's path; exit 1 when there is none
#
# The test opens the report with `chromium --headless --no-sandbox`, takes a screenshot and reads the DOM after
# its script ran; all of it works offline. The packages come from the machine's own apt sources, as in
# scripts/engine.sh; nothing is downloaded from anywhere else.
set -euo pipefail

log() { printf 'browser.sh: %s\n' "$*" >&2; }
fail() { log "$*"; exit 1; }

# Debian names the browser chromium; other distributions chromium-browser or google-chrome.
browser() {
  local candidate
  for candidate in chromium chromium-browser google-chrome; do
    if command -v "$candidate" >/dev/null 2>&1; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

install_packages() {
  local packages=()
  browser >/dev/null || packages+=(chromium)
  # Without a font, every text of a screenshot is empty boxes.
  [[ -d /usr/share/fonts/truetype/dejavu ]] || packages+=(fonts-dejavu-core)
  (( ${#packages[@]} )) || return 0
  [[ $(id -u) -eq 0 ]] || fail "installing needs root (apt-get): run sudo $0 install"
  command -v apt-get >/dev/null 2>&1 || fail "no apt-get here: install ${packages[*]} yourself"
  log "installing ${packages[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  browser >/dev/null || fail "chromium was installed but is not on PATH"
}

case ${1:-} in
  install) install_packages; log "ready: $(browser) ($("$(browser)" --version 2>/dev/null || echo 'version unknown'))" ;;
  path) browser ;;
  *) printf 'usage: %s install | path\n' "$0" >&2; exit 2 ;;
esac
