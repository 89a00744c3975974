#!/usr/bin/env bash
# A Docker engine, buildx and a registry on loopback, for buildflow's demo, tests and benchmarks.
#
#   scripts/engine.sh up        make an engine, buildx and a registry on 127.0.0.1:5000 answer (idempotent)
#   scripts/engine.sh down      stop what `up` started, and nothing else
#   scripts/engine.sh status    say what answers and who started it
#   scripts/engine.sh install   only install the Debian packages
#
# Where an engine already answers (a laptop, a CI runner with Docker), it is used as it is, and only a registry
# is started if none answers on 127.0.0.1:5000. On a bare Debian machine the packages are installed (bookworm
# has no buildx, so docker.io and docker-buildx come from the trixie suite of the same archive, pinned low so
# nothing else moves; the archive's address is read from the machine's own apt sources), the containerd image
# store is enabled, and dockerd starts without a bridge, so no container ever gets an address off loopback:
# builds use `network: host` or `none`.
set -euo pipefail

STATE=${BUILDFLOW_ENGINE_STATE:-/var/lib/buildflow-engine}
REGISTRY_ADDR=127.0.0.1:5000
TRIXIE_SOURCE=/etc/apt/sources.list.d/buildflow-trixie.sources
TRIXIE_PIN=/etc/apt/preferences.d/buildflow-trixie
DAEMON_JSON=/etc/docker/daemon.json
WAIT_SECONDS=${BUILDFLOW_ENGINE_WAIT:-90}

log() { printf 'engine.sh: %s\n' "$*" >&2; }
fail() { log "$*"; exit 1; }

# ---- what answers ------------------------------------------------------------------------------------------

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }
registry_answers() { timeout 5 curl -fsS -o /dev/null "http://$REGISTRY_ADDR/v2/" 2>/dev/null; }
buildx_answers() { timeout 10 docker buildx version >/dev/null 2>&1; }
started_by_us() { [[ -f "$STATE/$1.pid" ]] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

wait_for() {
  local what=$1 check=$2 log_file=$3 waited=0
  until "$check"; do
    if (( waited >= WAIT_SECONDS )); then
      log "$what did not answer within ${WAIT_SECONDS}s; the end of $log_file:"
      tail -n 20 "$log_file" >&2 || true
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
}

# ---- installing ---------------------------------------------------------------------------------------------

debian_archive() {
  local uri=""
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [[ -z "$uri" && -f /etc/apt/sources.list ]]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
  fi
  [[ -n "$uri" ]] || fail "no Debian apt source found: install docker.io and docker-buildx yourself"
  printf '%s\n' "$uri"
}

add_trixie() {
  [[ -f "$TRIXIE_SOURCE" ]] && return
  printf 'Types: deb\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: %s\n' \
    "$(debian_archive)" /usr/share/keyrings/debian-archive-keyring.gpg > "$TRIXIE_SOURCE"
  printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' > "$TRIXIE_PIN"
}

have() { command -v "$1" >/dev/null 2>&1; }

install_packages() {
  local stable=() missing_docker=0
  have dockerd && buildx_answers || missing_docker=1
  have docker-registry || stable+=(docker-registry)
  have mmdebstrap || stable+=(mmdebstrap)
  [[ -x /bin/busybox ]] || stable+=(busybox-static)
  have curl || stable+=(curl)
  if (( missing_docker == 0 )) && (( ${#stable[@]} == 0 )); then return; fi
  [[ $(id -u) -eq 0 ]] || fail "installing needs root (apt-get): run sudo $0 install"
  apt-get update -qq
  if (( missing_docker )); then
    add_trixie
    log "installing docker.io and docker-buildx (trixie)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t trixie \
      docker.io docker-buildx >/dev/null
  fi
  if (( ${#stable[@]} )); then
    log "installing ${stable[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${stable[@]}" >/dev/null
  fi
}

# ---- the engine ---------------------------------------------------------------------------------------------

enable_containerd_store() {
  mkdir -p "$(dirname "$DAEMON_JSON")"
  python3 - "$DAEMON_JSON" <<'EOF'
import json, os, sys
path = sys.argv[1]
config = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else {}
config.setdefault("features", {})["containerd-snapshotter"] = True
json.dump(config, open(path, "w"), indent=2)
EOF
}

clear_stale() {
  # A killed engine leaves pid files and sockets that stop the next one from starting.
  local pid_file
  for pid_file in /var/run/docker.pid /var/run/docker/containerd/containerd.pid "$STATE/dockerd.pid" \
      "$STATE/registry.pid"; do
    if [[ -f "$pid_file" ]] && ! kill -0 "$(cat "$pid_file" 2>/dev/null)" 2>/dev/null; then
      log "removing stale $pid_file"
      rm -f "$pid_file"
    fi
  done
  if [[ -S /var/run/docker.sock ]] && ! engine_answers; then
    log "removing stale /var/run/docker.sock"
    rm -f /var/run/docker.sock
  fi
}

start_engine() {
  enable_containerd_store
  clear_stale
  log "starting dockerd (no bridge, containerd image store); log: $STATE/dockerd.log"
  # Registries other than loopback ones go through a proxy address where nothing listens: a pull from Docker
  # Hub fails at once with "connection refused" instead of looking up a host name off this machine.
  HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY=localhost,127.0.0.1,::1 \
    setsid dockerd --bridge=none --iptables=false --ip-masq=false >"$STATE/dockerd.log" 2>&1 < /dev/null &
  echo $! > "$STATE/dockerd.pid"
  wait_for "the Docker engine" engine_answers "$STATE/dockerd.log"
}

# ---- the registry -------------------------------------------------------------------------------------------

start_registry() {
  mkdir -p "$STATE/registry"
  cat > "$STATE/registry.yml" <<EOF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $STATE/registry}
  delete: {enabled: true}
http:
  addr: $REGISTRY_ADDR
EOF
  log "starting the registry on $REGISTRY_ADDR; log: $STATE/registry.log"
  setsid docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 < /dev/null &
  echo $! > "$STATE/registry.pid"
  wait_for "the registry" registry_answers "$STATE/registry.log"
}

# ---- commands -----------------------------------------------------------------------------------------------

up() {
  mkdir -p "$STATE"
  if ! engine_answers || ! buildx_answers || ! registry_answers; then
    install_packages
  fi
  engine_answers || start_engine
  buildx_answers || fail "the engine answers but buildx does not: install the docker-buildx plugin"
  registry_answers || start_registry
  log "ready: $(docker version --format 'engine {{.Server.Version}}'), $(docker buildx version | cut -d' ' -f1-2)," \
      "registry http://$REGISTRY_ADDR"
}

stop() {
  local name=$1 pid
  started_by_us "$name" || { rm -f "$STATE/$name.pid"; return; }
  pid=$(cat "$STATE/$name.pid")
  log "stopping $name (pid $pid)"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$STATE/$name.pid"
}

down() {
  stop registry
  stop dockerd
}

status() {
  local who
  for name in dockerd registry; do
    who="not started by engine.sh"
    started_by_us "$name" && who="started by engine.sh, pid $(cat "$STATE/$name.pid")"
    case $name in
      dockerd) engine_answers && echo "engine: answers ($who)" || echo "engine: does not answer" ;;
      registry) registry_answers && echo "registry: http://$REGISTRY_ADDR answers ($who)" \
                  || echo "registry: nothing answers on $REGISTRY_ADDR" ;;
    esac
  done
  buildx_answers && echo "buildx: $(docker buildx version)" || echo "buildx: not available"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  install) install_packages ;;
  *) printf 'usage: %s up|down|status|install\n' "$0" >&2; exit 2 ;;
esac
