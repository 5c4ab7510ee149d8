#!/usr/bin/env bash
# Slipway's local services: a Docker Engine, an OCI registry, PostgreSQL and a local root image.
#
#   scripts/services.sh up       make sure every service answers (idempotent; installs when root)
#   scripts/services.sh status   say what answers and what does not (exit 1 if anything is down)
#   scripts/services.sh down     stop what this script started (never a daemon it did not start)
#
# Settings (environment, with defaults):
#   SLIPWAY_STATE_DIR      /var/tmp/slipway-services   logs, pid files, registry storage
#   SLIPWAY_REGISTRY_ADDR  127.0.0.1:5000              the local OCI registry (plain http on loopback)
#   SLIPWAY_PG_PORT        5432                        PostgreSQL on 127.0.0.1
#   SLIPWAY_PG_USER/PASSWORD/DB  slipway/slipway/slipway  role and database for tests and the demo
#   SLIPWAY_ROOT_IMAGE     slipway.local/root:busybox  root image built from Debian's busybox-static
#   SLIPWAY_DOCKER_TCP_ADDR  127.0.0.1:2375            the engine also on loopback TCP (tests of DOCKER_HOST=tcp://)
#
# The engine on TCP: a dockerd this script starts listens there itself (-H); a dockerd that is
# already running is never restarted: a loopback forwarder (socat) is started in front of its socket.
set -euo pipefail

STATE_DIR=${SLIPWAY_STATE_DIR:-/var/tmp/slipway-services}
REGISTRY_ADDR=${SLIPWAY_REGISTRY_ADDR:-127.0.0.1:5000}
PG_PORT=${SLIPWAY_PG_PORT:-5432}
PG_USER=${SLIPWAY_PG_USER:-slipway}
PG_PASSWORD=${SLIPWAY_PG_PASSWORD:-slipway}
PG_DB=${SLIPWAY_PG_DB:-slipway}
ROOT_IMAGE=${SLIPWAY_ROOT_IMAGE:-slipway.local/root:busybox}
DOCKER_TCP_ADDR=${SLIPWAY_DOCKER_TCP_ADDR:-127.0.0.1:2375}
DOCKER_SOCKET=/var/run/docker.sock
PG_VERSION=15

log() { printf 'services: %s\n' "$*" >&2; }
die() { printf 'services: error: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

APT_UPDATED=0
apt_install() {
  is_root || die "missing $*; install it (as root: apt-get install $*) or run this script as root"
  command -v apt-get >/dev/null || die "missing $* and no apt-get to install it with"
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    apt-get update -qq >"$STATE_DIR/apt.log" 2>&1 || die "apt-get update failed (see $STATE_DIR/apt.log)"
    APT_UPDATED=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >>"$STATE_DIR/apt.log" 2>&1 \
    || die "apt-get install $* failed (see $STATE_DIR/apt.log)"
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2; shift 2
  local i
  for ((i = 0; i < secs * 4; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  return 1
}

# ---------------------------------------------------------------- Docker Engine
docker_ok() { docker info >/dev/null 2>&1; }
dockerd_alive() { pgrep -x dockerd >/dev/null 2>&1; }

docker_up() {
  if docker_ok; then log "docker: engine answers"; return 0; fi
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    apt_install docker.io iptables
  fi
  if dockerd_alive; then
    # A daemon is running but not answering yet (still starting): never start a second one.
    log "docker: a dockerd is already running; waiting for it"
  else
    is_root || die "docker: no engine answers and only root can start dockerd"
    # A killed dockerd leaves its pid file behind, which blocks the next start.
    [ -f /var/run/docker.pid ] && { log "docker: removing stale /var/run/docker.pid"; rm -f /var/run/docker.pid; }
    loopback_only
    log "docker: starting /usr/sbin/dockerd, also on tcp://$DOCKER_TCP_ADDR (log: $STATE_DIR/dockerd.log)"
    nohup /usr/sbin/dockerd -H "unix://$DOCKER_SOCKET" -H "tcp://$DOCKER_TCP_ADDR" >"$STATE_DIR/dockerd.log" 2>&1 &
    echo $! >"$STATE_DIR/dockerd.started"
  fi
  wait_for 90 "docker" docker info || die "docker: engine did not answer within 90s (see $STATE_DIR/dockerd.log)"
  log "docker: engine answers"
}

# ---------------------------------------------------------------- the engine on loopback TCP
docker_tcp_ok() { curl -fs -m 5 -o /dev/null "http://$DOCKER_TCP_ADDR/_ping"; }

# An engine on TCP without TLS is root on the host for anyone who can connect: loopback only.
loopback_only() {
  case "$DOCKER_TCP_ADDR" in
    127.*:* | localhost:*) ;;
    *) die "docker: refusing to expose the engine on $DOCKER_TCP_ADDR without TLS; use a loopback address" ;;
  esac
}

# The forwarder's pid, when the pid file names a live socat (a recycled pid is never signalled).
forwarder_pid() {
  local pid
  [ -f "$STATE_DIR/docker-tcp.pid" ] || return 1
  pid=$(cat "$STATE_DIR/docker-tcp.pid")
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = socat ] && echo "$pid"
}

docker_tcp_up() {
  if docker_tcp_ok; then log "docker: also answers on tcp://$DOCKER_TCP_ADDR"; return 0; fi
  loopback_only
  command -v curl >/dev/null 2>&1 || apt_install curl
  # A forwarder left from an earlier run that no longer answers is replaced.
  local stale
  if stale=$(forwarder_pid); then kill "$stale" 2>/dev/null || true; fi
  rm -f "$STATE_DIR/docker-tcp.pid"
  command -v socat >/dev/null 2>&1 || apt_install socat
  local host=${DOCKER_TCP_ADDR%:*} port=${DOCKER_TCP_ADDR##*:}
  log "docker: forwarding tcp://$DOCKER_TCP_ADDR to $DOCKER_SOCKET (socat; log: $STATE_DIR/docker-tcp.log)"
  nohup socat "TCP-LISTEN:$port,bind=$host,reuseaddr,fork" "UNIX-CONNECT:$DOCKER_SOCKET" \
    >"$STATE_DIR/docker-tcp.log" 2>&1 &
  echo $! >"$STATE_DIR/docker-tcp.pid"
  wait_for 15 "docker tcp" docker_tcp_ok || die "docker: tcp://$DOCKER_TCP_ADDR does not answer (see $STATE_DIR/docker-tcp.log)"
  log "docker: also answers on tcp://$DOCKER_TCP_ADDR"
}

# ---------------------------------------------------------------- OCI registry
registry_ok() { curl -fs -o /dev/null "http://$REGISTRY_ADDR/v2/"; }

registry_up() {
  if registry_ok; then log "registry: http://$REGISTRY_ADDR answers"; return 0; fi
  command -v docker-registry >/dev/null 2>&1 || apt_install docker-registry
  command -v curl >/dev/null 2>&1 || apt_install curl
  mkdir -p "$STATE_DIR/registry/data"
  cat >"$STATE_DIR/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE_DIR/registry/data
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
EOF
  log "registry: starting docker-registry on $REGISTRY_ADDR (log: $STATE_DIR/registry.log)"
  nohup docker-registry serve "$STATE_DIR/registry/config.yml" >"$STATE_DIR/registry.log" 2>&1 &
  echo $! >"$STATE_DIR/registry.pid"
  wait_for 30 "registry" registry_ok || die "registry: did not answer on $REGISTRY_ADDR (see $STATE_DIR/registry.log)"
  log "registry: http://$REGISTRY_ADDR answers"
}

# ---------------------------------------------------------------- PostgreSQL
pg_ok() { PGPASSWORD=$PG_PASSWORD psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" -tAc 'select 1' >/dev/null 2>&1; }
as_postgres() { runuser -u postgres -- "$@"; }

pg_up() {
  if pg_ok; then log "postgres: 127.0.0.1:$PG_PORT answers (role $PG_USER, database $PG_DB)"; return 0; fi
  command -v pg_ctlcluster >/dev/null 2>&1 && [ -x /usr/lib/postgresql/$PG_VERSION/bin/postgres ] \
    || apt_install postgresql
  is_root || die "postgres: not answering and only root can start the cluster"
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$PG_VERSION main"; then
    log "postgres: creating cluster $PG_VERSION/main"
    pg_createcluster "$PG_VERSION" main -p "$PG_PORT" >/dev/null
  fi
  if ! pg_lsclusters -h | awk -v v="$PG_VERSION" '$1==v && $2=="main" {print $4}' | grep -q online; then
    log "postgres: starting cluster $PG_VERSION/main"
    pg_ctlcluster "$PG_VERSION" main start || die "postgres: pg_ctlcluster $PG_VERSION main start failed"
  fi
  wait_for 30 "postgres" as_postgres psql -p "$PG_PORT" -tAc 'select 1' || die "postgres: cluster did not answer"
  as_postgres psql -p "$PG_PORT" -v ON_ERROR_STOP=1 -q <<SQL >/dev/null
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE "$PG_USER" LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
  ELSE
    ALTER ROLE "$PG_USER" LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
  END IF;
END \$\$;
SQL
  if ! as_postgres psql -p "$PG_PORT" -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1; then
    as_postgres createdb -p "$PG_PORT" -O "$PG_USER" "$PG_DB"
  fi
  wait_for 10 "postgres" pg_ok || die "postgres: role $PG_USER cannot log in over TCP on 127.0.0.1:$PG_PORT"
  log "postgres: 127.0.0.1:$PG_PORT answers (role $PG_USER, database $PG_DB)"
}

# ---------------------------------------------------------------- root image
root_image_ok() { docker image inspect "$ROOT_IMAGE" >/dev/null 2>&1; }

# grep -q closes the pipe early, which pipefail would report as a failure: capture first.
busybox_static_ok() {
  [ -x /bin/busybox ] || return 1
  local applets linkage
  applets=$(/bin/busybox --list 2>/dev/null) || return 1
  linkage=$(ldd /bin/busybox 2>&1 || true)
  grep -qx sh <<<"$applets" && grep -q 'not a dynamic' <<<"$linkage"
}

root_image_up() {
  if root_image_ok; then log "root image: $ROOT_IMAGE present"; return 0; fi
  busybox_static_ok || apt_install busybox-static
  local root
  root=$(mktemp -d "$STATE_DIR/rootfs.XXXXXX")
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,home/agent,var/tmp,proc,sys,dev,opt,configs}
  cp /bin/busybox "$root/bin/busybox"
  local applet
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000:agent:/home/agent:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nagent:x:1000:\nnogroup:x:65534:\n' >"$root/etc/group"
  chmod 1777 "$root/tmp" "$root/var/tmp"
  chown 1000:1000 "$root/home/agent"
  log "root image: importing $ROOT_IMAGE from Debian's busybox-static"
  tar --numeric-owner -C "$root" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["/bin/sh"]' \
    -m "slipway local root image (busybox-static)" - "$ROOT_IMAGE" >/dev/null
  rm -rf "$root"
  root_image_ok || die "root image: docker import did not produce $ROOT_IMAGE"
  log "root image: $ROOT_IMAGE present"
}

# ---------------------------------------------------------------- commands
up() {
  mkdir -p "$STATE_DIR"
  docker_up
  docker_tcp_up
  registry_up
  pg_up
  root_image_up
  cat >&2 <<EOF
services: ready
  docker engine   $(docker info --format '{{.ServerVersion}} ({{.Driver}})' 2>/dev/null), also DOCKER_HOST=tcp://$DOCKER_TCP_ADDR
  OCI registry    oci://$REGISTRY_ADDR
  PostgreSQL      postgres://$PG_USER:***@127.0.0.1:$PG_PORT/$PG_DB
  root image      $ROOT_IMAGE
  stop with       bash scripts/services.sh down
EOF
}

status() {
  local rc=0
  if docker_ok; then log "docker: up"; else log "docker: DOWN"; rc=1; fi
  if docker_tcp_ok; then log "docker tcp: up ($DOCKER_TCP_ADDR)"; else log "docker tcp: DOWN ($DOCKER_TCP_ADDR)"; rc=1; fi
  if registry_ok; then log "registry: up ($REGISTRY_ADDR)"; else log "registry: DOWN ($REGISTRY_ADDR)"; rc=1; fi
  if pg_ok; then log "postgres: up (127.0.0.1:$PG_PORT)"; else log "postgres: DOWN (127.0.0.1:$PG_PORT)"; rc=1; fi
  if root_image_ok; then log "root image: present ($ROOT_IMAGE)"; else log "root image: MISSING ($ROOT_IMAGE)"; rc=1; fi
  return $rc
}

down() {
  local forwarder
  if forwarder=$(forwarder_pid); then
    kill "$forwarder" 2>/dev/null && log "docker tcp: stopped the forwarder" || true
  fi
  rm -f "$STATE_DIR/docker-tcp.pid"
  if [ -f "$STATE_DIR/registry.pid" ]; then
    kill "$(cat "$STATE_DIR/registry.pid")" 2>/dev/null && log "registry: stopped" || true
    rm -f "$STATE_DIR/registry.pid"
  fi
  if is_root && command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster "$PG_VERSION" main stop 2>/dev/null && log "postgres: stopped" || true
  fi
  if [ -f "$STATE_DIR/dockerd.started" ]; then
    kill "$(cat "$STATE_DIR/dockerd.started")" 2>/dev/null && log "docker: stopped the dockerd this script started" || true
    rm -f "$STATE_DIR/dockerd.started"
  fi
}

case "${1:-up}" in
  up) up ;;
  status) status ;;
  down) down ;;
  *) echo "usage: $0 up|status|down" >&2; exit 2 ;;
esac
