#!/usr/bin/env bash
# Docker engines, buildx and a registry on loopback, for buildflow's demo, tests and benchmarks.
#
#   scripts/engine.sh up [--engines N] [--classic]
#                                   make an engine, buildx and a registry on 127.0.0.1:5000 answer (idempotent);
#                                   --engines N also starts engines 2..N on this machine, --classic one more
#                                   engine with the classic image store
#   scripts/engine.sh down [--extra]
#                                   stop what `up` started, and nothing else; --extra: only engines 2..N and
#                                   the classic one, leaving engine 1 and the registry alone
#   scripts/engine.sh status        say, for every engine it knows and the registry, what answers and who started it
#   scripts/engine.sh install       only install the Debian packages
#
# Where an engine already answers (a laptop, a CI runner with Docker), it is used as it is, and only a registry
# is started if none answers on 127.0.0.1:5000. On a bare Debian machine the packages are installed (bookworm
# has no buildx, so docker.io and docker-buildx come from the trixie suite of the same archive, pinned low so
# nothing else moves; the archive's address is read from the machine's own apt sources), the containerd image
# store is enabled, and dockerd starts without a bridge, so no container ever gets an address off loopback:
# builds use `network: host` or `none`.
#
# Extra engines (several build hosts on one machine, for the multi-builder tests and benchmarks) are further
# dockerd processes, each with everything of its own under $STATE/engine-K/: data-root (data/), exec-root
# (run/, where dockerd starts its own managed containerd), pid file, socket (docker.sock), daemon config file
# (daemon.json) and log (dockerd.log). Each is a docker context, and so a buildx builder (docker driver), named
# buildflow-K: `--engines 3` makes buildflow-2 and buildflow-3 (containerd image store, like engine 1), and
# `--classic` makes buildflow-classic (classic image store: overlay2 where it works, else vfs). They push to the
# same registry on 127.0.0.1:5000 and start without a bridge and with the same proxy settings as engine 1.
set -euo pipefail

STATE=${BUILDFLOW_ENGINE_STATE:-/var/lib/buildflow-engine}
REGISTRY_ADDR=127.0.0.1:5000
TRIXIE_SOURCE=/etc/apt/sources.list.d/buildflow-trixie.sources
TRIXIE_PIN=/etc/apt/preferences.d/buildflow-trixie
DAEMON_JSON=/etc/docker/daemon.json
WAIT_SECONDS=${BUILDFLOW_ENGINE_WAIT:-90}
# Every engine: registries other than loopback ones go through a proxy address where nothing listens, so a pull
# from Docker Hub fails at once with "connection refused" instead of looking up a host name off this machine;
# and no bridge, no iptables rules, so no container gets an address off loopback and the host's network is
# left as it is.
PROXY_ENV=(HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY=localhost,127.0.0.1,::1)
NO_BRIDGE=(--bridge=none --iptables=false --ip-masq=false)
# Where dockerd looks for a containerd of the system before it starts one of its own.
SYSTEM_CONTAINERD=/run/containerd/containerd.sock

log() { printf 'engine.sh: %s\n' "$*" >&2; }
fail() { log "$*"; exit 1; }

# ---- what answers ------------------------------------------------------------------------------------------

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }
registry_answers() { timeout 5 curl -fsS -o /dev/null "http://$REGISTRY_ADDR/v2/" 2>/dev/null; }
buildx_answers() { timeout 10 docker buildx version >/dev/null 2>&1; }
# A killed process stays a zombie until its parent (here init) reaps it: that is not alive.
alive() { kill -0 "$1" 2>/dev/null && [[ $(ps -o stat= -p "$1" 2>/dev/null) != Z* ]]; }
started_by_us() { [[ -f "$STATE/$1.pid" ]] && alive "$(cat "$STATE/$1.pid")"; }

# wait_for WHAT LOG_FILE PID CHECK [ARG...]: wait until CHECK succeeds; fail (with the end of the log) when the
# process PID exits first or WAIT_SECONDS pass.
wait_for() {
  local what=$1 log_file=$2 pid=$3 waited=0
  shift 3
  until "$@"; do
    if ! alive "$pid"; then
      log "$what exited before it answered; the end of $log_file:"
      tail -n 20 "$log_file" >&2 || true
      exit 1
    fi
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
  have openssl || stable+=(openssl)  # the CA and certificates of the TLS registry tests
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
    if [[ -f "$pid_file" ]] && ! alive "$(cat "$pid_file" 2>/dev/null)"; then
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
  env "${PROXY_ENV[@]}" setsid dockerd "${NO_BRIDGE[@]}" >"$STATE/dockerd.log" 2>&1 < /dev/null &
  echo $! > "$STATE/dockerd.pid"
  wait_for "the Docker engine" "$STATE/dockerd.log" "$(cat "$STATE/dockerd.pid")" engine_answers
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
  wait_for "the registry" "$STATE/registry.log" "$(cat "$STATE/registry.pid")" registry_answers
}

# ---- extra engines ------------------------------------------------------------------------------------------
# An extra engine is named by K: 2, 3, ... or "classic". Its context and buildx builder is buildflow-K, and all
# it has is under $STATE/engine-K/, so it shares no file, socket, containerd or network setting with engine 1.

engine_dir() { printf '%s/engine-%s\n' "$STATE" "$1"; }
context_name() { printf 'buildflow-%s\n' "$1"; }
engine_host() { printf 'unix://%s/docker.sock\n' "$(engine_dir "$1")"; }
extra_answers() { timeout 10 docker -H "$(engine_host "$1")" info >/dev/null 2>&1; }

# The extra engines engine.sh knows (has a directory for): 2, 3, ... in order, then classic.
known_extras() {
  local dir
  for dir in "$STATE"/engine-*/; do
    [[ -d $dir ]] || continue
    dir=${dir%/}
    printf '%s\n' "${dir##*/engine-}"
  done | sort -V
}

# "containerd image store" or "classic image store (DRIVER)" for the engine at HOST; fails if it does not answer.
image_store() {
  local info
  info=$(timeout 10 docker -H "$1" info --format '{{json .DriverStatus}} {{.Driver}}' 2>/dev/null) || return 1
  if [[ $info == *io.containerd.snapshotter.v1* ]]; then
    echo "containerd image store"
  else
    echo "classic image store (${info##* })"
  fi
}

# overlay2 needs the kernel's overlay file system on a backing file system that can carry it (not overlay itself,
# as inside many containers), and dockerd finds out only when it starts. So mount a tiny overlay where the
# data-root will be, as dockerd's own check does; vfs (a full copy per layer: slow and big) works everywhere.
overlay_works() {
  local probe works=1
  probe=$(mktemp -d "$1/overlay-probe.XXXXXX")
  mkdir "$probe/lower" "$probe/upper" "$probe/work" "$probe/merged"
  if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
      "$probe/merged" 2>/dev/null; then
    umount "$probe/merged"
    works=0
  fi
  rm -rf "$probe"
  return "$works"
}

# Its own daemon config file, so that neither /etc/docker/daemon.json (engine 1's) nor a change to it reaches it.
# Prints the image store it chose.
write_engine_config() {
  local k=$1 dir driver=vfs
  dir=$(engine_dir "$k")
  if [[ $k == classic ]]; then
    overlay_works "$dir" && driver=overlay2
    printf '{\n  "features": {"containerd-snapshotter": false},\n  "storage-driver": "%s"\n}\n' "$driver" \
      > "$dir/daemon.json"
    echo "classic image store, $driver"
  else
    printf '{\n  "features": {"containerd-snapshotter": true}\n}\n' > "$dir/daemon.json"
    echo "containerd image store"
  fi
}

# A unix socket path holds at most 107 bytes, and dockerd and its containerd put sockets up to 33 bytes deep
# under the exec-root (containerd/containerd.sock.ttrpc).
check_path_length() {
  local exec_root
  exec_root="$(engine_dir "$1")/run"
  (( ${#exec_root} + 33 <= 107 )) \
    || fail "$exec_root is too long for the sockets under it: set a shorter BUILDFLOW_ENGINE_STATE"
}

clear_stale_extra() {
  # A killed engine leaves pid files and a socket behind; dockerd refuses to start while its pid file names a
  # live process, and adopts a containerd still running from the killed one.
  local dir pid_file
  dir=$(engine_dir "$1")
  for pid_file in "$dir/dockerd.pid" "$dir/docker.pid" "$dir/run/containerd/containerd.pid"; do
    if [[ -f "$pid_file" ]] && ! alive "$(cat "$pid_file" 2>/dev/null)"; then
      log "removing stale $pid_file"
      rm -f "$pid_file"
    fi
  done
  if [[ -S "$dir/docker.sock" ]]; then
    log "removing stale $dir/docker.sock"
    rm -f "$dir/docker.sock"
  fi
}

start_extra() {
  local k=$1 dir name store
  dir=$(engine_dir "$k")
  name=$(context_name "$k")
  mkdir -p "$dir"
  check_path_length "$k"
  store=$(write_engine_config "$k")
  clear_stale_extra "$k"
  log "starting engine $name (no bridge, $store); log: $dir/dockerd.log"
  # --pidfile is dockerd's own lock (engine 1's is /var/run/docker.pid); dockerd.pid is engine.sh's record that
  # it started this engine, as $STATE/dockerd.pid is for engine 1. With its own --exec-root, dockerd starts a
  # managed containerd of its own under run/containerd (root under data/containerd). The containerd namespace
  # is its own too, so that even where a system containerd runs (which dockerd would use instead), no two
  # engines share images, containers or leases.
  env "${PROXY_ENV[@]}" setsid dockerd "${NO_BRIDGE[@]}" \
    --config-file "$dir/daemon.json" --data-root "$dir/data" --exec-root "$dir/run" \
    --pidfile "$dir/docker.pid" -H "$(engine_host "$k")" \
    --containerd-namespace "$name" --containerd-plugins-namespace "$name-plugins" \
    >"$dir/dockerd.log" 2>&1 < /dev/null &
  echo $! > "$dir/dockerd.pid"
  wait_for "engine $name" "$dir/dockerd.log" "$(cat "$dir/dockerd.pid")" extra_answers "$k"
}

# The docker context buildflow-K pointing at the engine's socket: created if missing, kept if right, fixed if
# not. A docker context is a buildx builder (docker driver) of the same name; a buildx builder instance that
# someone created under that name would hide it, so check that the name is the docker driver on our socket.
ensure_context() {
  local k=$1 name host current out
  name=$(context_name "$k")
  host=$(engine_host "$k")
  if current=$(docker context inspect "$name" --format '{{.Endpoints.docker.Host}}' 2>/dev/null); then
    if [[ $current != "$host" ]]; then
      log "context $name pointed at $current; pointing it at $host"
      out=$(docker context update "$name" --docker "host=$host" 2>&1) || fail "$out"
    fi
  else
    log "creating docker context (and buildx builder) $name"
    out=$(docker context create "$name" --description "buildflow engine $k (scripts/engine.sh)" \
      --docker "host=$host" 2>&1) || fail "$out"
  fi
  [[ $(docker buildx inspect "$name" 2>/dev/null | awk '/^Driver:/ {print $2; exit}') == docker ]] \
    || fail "buildx builder $name is not the docker driver of context $name: remove it (docker buildx rm $name)"
}

remove_context() {
  local name
  name=$(context_name "$1")
  docker context inspect "$name" >/dev/null 2>&1 || return 0
  log "removing docker context $name"
  docker context rm "$name" >/dev/null 2>&1 || log "could not remove context $name (is it the current context?)"
}

up_extra() {
  local k=$1 dir
  dir=$(engine_dir "$k")
  if extra_answers "$k"; then
    :
  elif started_by_us "engine-$k/dockerd"; then
    # Started by an `up` that is still waiting for it (or an engine that hangs): wait, never start a second one.
    log "engine $(context_name "$k") is starting (pid $(cat "$dir/dockerd.pid")); waiting for it"
    wait_for "engine $(context_name "$k")" "$dir/dockerd.log" "$(cat "$dir/dockerd.pid")" extra_answers "$k"
  else
    start_extra "$k"
  fi
  ensure_context "$k"
}

# After its dockerd is gone, the managed containerd of an extra engine (left running when dockerd was killed).
stop_orphan_containerd() {
  local pid_file pid
  pid_file="$(engine_dir "$1")/run/containerd/containerd.pid"
  [[ -f $pid_file ]] || return 0
  pid=$(cat "$pid_file")
  if alive "$pid" && grep -qF "$(engine_dir "$1")/run/containerd" "/proc/$pid/cmdline"; then
    log "stopping the containerd of engine $(context_name "$1") (pid $pid)"
    kill "$pid" 2>/dev/null || true
  fi
}

# dockerd bind-mounts its data-root onto itself (to make it a shared mount) and unmounts it when it stops; after a
# kill the mount stays, and the next dockerd on it does not count it as its own.
unmount_data_root() {
  local data
  data="$(engine_dir "$1")/data"
  if mountpoint -q "$data"; then
    log "unmounting $data"
    umount "$data" || log "could not unmount $data"
  fi
}

down_extras() {
  local k
  for k in $(known_extras); do
    stop "engine-$k/dockerd"
    if ! extra_answers "$k"; then
      stop_orphan_containerd "$k"
      unmount_data_root "$k"
      remove_context "$k"
    fi
  done
}

extra_prerequisites() {
  [[ $(id -u) -eq 0 ]] || fail "extra engines need root (dockerd): run engine.sh with sudo"
  have dockerd || fail "extra engines need dockerd on this machine: run $0 install"
  if [[ -S $SYSTEM_CONTAINERD ]]; then
    log "a system containerd runs ($SYSTEM_CONTAINERD): dockerd uses it instead of starting its own, so the" \
        "extra engines keep apart by containerd namespace (buildflow-K) only"
  fi
}

# ---- commands -----------------------------------------------------------------------------------------------

usage() {
  printf 'usage: %s up [--engines N] [--classic] | down [--extra] | status | install\n' "$0" >&2
  exit 2
}

up() {
  local engines=1 classic=0 k builders=()
  while (( $# )); do
    case $1 in
      --engines) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || usage; engines=$2; shift 2 ;;
      --classic) classic=1; shift ;;
      *) usage ;;
    esac
  done
  mkdir -p "$STATE"
  if ! engine_answers || ! buildx_answers || ! registry_answers; then
    install_packages
  fi
  engine_answers || start_engine
  buildx_answers || fail "the engine answers but buildx does not: install the docker-buildx plugin"
  registry_answers || start_registry
  builders=("$(docker context show)")
  if (( engines > 1 || classic )); then
    extra_prerequisites
  fi
  for (( k = 2; k <= engines; k++ )); do
    up_extra "$k"
    builders+=("$(context_name "$k")")
  done
  if (( classic )); then
    up_extra classic
    builders+=("$(context_name classic)")
  fi
  log "ready: $(docker version --format 'engine {{.Server.Version}}'), $(docker buildx version | cut -d' ' -f1-2)," \
      "registry http://$REGISTRY_ADDR, builders: ${builders[*]}"
}

stop() {
  local name=$1 pid
  started_by_us "$name" || { rm -f "$STATE/$name.pid"; return; }
  pid=$(cat "$STATE/$name.pid")
  log "stopping $name (pid $pid)"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 30); do alive "$pid" || break; sleep 1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$STATE/$name.pid"
}

down() {
  (( $# <= 1 )) || usage
  case ${1:-} in
    "") ;;
    --extra) down_extras; return ;;
    *) usage ;;
  esac
  down_extras
  stop registry
  stop dockerd
}

who_started() {
  if started_by_us "$1"; then
    echo "started by engine.sh, pid $(cat "$STATE/$1.pid")"
  else
    echo "not started by engine.sh"
  fi
}

# One line per engine: its context (= buildx builder), socket, whether it answers and with which image store,
# and who started it.
describe_engine() {
  local label=$1 context=$2 host=$3 pid_name=$4 store
  if store=$(image_store "$host"); then
    echo "$label: context $context, $host answers, $store ($(who_started "$pid_name"))"
  else
    echo "$label: context $context, $host does not answer ($(who_started "$pid_name"))"
  fi
}

status() {
  local k name context_host
  describe_engine "engine 1" "$(docker context show 2>/dev/null)" \
    "$(docker context inspect --format '{{.Endpoints.docker.Host}}' 2>/dev/null)" dockerd
  for k in $(known_extras); do
    name=$(context_name "$k")
    context_host=$(docker context inspect "$name" --format '{{.Endpoints.docker.Host}}' 2>/dev/null) \
      || name="$name (no such context)"
    [[ -z $context_host || $context_host == "$(engine_host "$k")" ]] || name="$name (points at $context_host)"
    describe_engine "engine $k" "$name" "$(engine_host "$k")" "engine-$k/dockerd"
  done
  if registry_answers; then
    echo "registry: http://$REGISTRY_ADDR answers ($(who_started registry))"
  else
    echo "registry: nothing answers on $REGISTRY_ADDR"
  fi
  buildx_answers && echo "buildx: $(docker buildx version)" || echo "buildx: not available"
}

command=${1:-}
if (( $# )); then shift; fi
case $command in
  up) up "$@" ;;
  down) down "$@" ;;
  status) (( $# == 0 )) || usage; status ;;
  install) (( $# == 0 )) || usage; install_packages ;;
  *) usage ;;
esac
