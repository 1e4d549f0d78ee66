#!/usr/bin/env bash
# Real local infrastructure without Docker: one Apache Kafka broker (KRaft, combined
# broker+controller) and one project-local PostgreSQL cluster, both on 127.0.0.1.
# Idempotent: every subcommand can be run again; a second start is a no-op.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$SCRIPT_DIR")

abspath() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }

STATE_DIR=$(abspath "${CASHFLOW_LOCAL_DIR:-$REPO_ROOT/.local}")
CACHE_DIR=$(abspath "${CASHFLOW_CACHE_DIR:-$REPO_ROOT/.cache}")

KAFKA_VERSION=${KAFKA_VERSION:-4.3.1}
KAFKA_PORT=${LOCAL_KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${LOCAL_KAFKA_CONTROLLER_PORT:-19093}
KAFKA_LIBS=$CACHE_DIR/kafka-$KAFKA_VERSION/libs
KAFKA_LIBS_MARKER=$KAFKA_LIBS/.complete
KAFKA_STATE=$STATE_DIR/kafka
KAFKA_DATA=$KAFKA_STATE/data
KAFKA_PROPS=$KAFKA_STATE/server.properties
KAFKA_LOG=$KAFKA_STATE/kafka.log
KAFKA_PID=$KAFKA_STATE/kafka.pid
KAFKA_LOG4J=$SCRIPT_DIR/kafka/log4j2.properties
KAFKA_READY_TIMEOUT=60

PG_PORT=${LOCAL_PG_PORT:-15432}
# Run as root, PostgreSQL runs as the postgres user, which must be able to enter its data dir.
# When it cannot reach the state dir (a checkout under /root, mode 700), the cluster lives under
# PG_OUTSIDE_ROOT instead, in a dir named after a hash of the state dir: one per checkout.
PG_OUTSIDE_ROOT=/var/lib/cashflow-refresh
PG_OUTSIDE_DIR=$PG_OUTSIDE_ROOT/$(printf '%s' "$STATE_DIR" | sha256sum | cut -c1-16)
PG_STATE="" PG_DATA="" PG_RUN="" PG_LOG="" PG_WHY_OUTSIDE=""
PG_APP_USER=cashflow
PG_APP_PASSWORD=cashflow
PG_APP_DB=cashflow

JAVA=java
if [[ -n ${JAVA_HOME:-} && -x ${JAVA_HOME}/bin/java ]]; then JAVA=$JAVA_HOME/bin/java; fi

log() { printf '[local-infra] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
is_root() { [[ $EUID -eq 0 ]]; }

usage() {
  cat >&2 <<EOF
usage: $(basename "$0") <command> [kafka|postgres]

  install [kafka|postgres]  check prerequisites, fetch the Kafka jars / install PostgreSQL
  start   [kafka|postgres]  start (default both); no-op when already running
  stop    [kafka|postgres]  stop (default both)
  status  [kafka|postgres]  one line per service; exit 0 if all run, 3 otherwise
  logs                      last 200 lines of each log file
  env                       print exports: eval "\$($(basename "$0") env)"
  reset                     stop both and delete the state dir ($STATE_DIR)

Kafka: 127.0.0.1:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT), version $KAFKA_VERSION
PostgreSQL: 127.0.0.1:$PG_PORT, database/user/password $PG_APP_DB/$PG_APP_USER/$PG_APP_PASSWORD,
            data in $PG_DATA
Environment: CASHFLOW_LOCAL_DIR CASHFLOW_CACHE_DIR KAFKA_VERSION LOCAL_KAFKA_PORT
             LOCAL_KAFKA_CONTROLLER_PORT LOCAL_PG_PORT LOCAL_PG_BINDIR JAVA_HOME
EOF
  exit 2
}

# Serialises install/start/stop/reset so parallel callers (e.g. test workers) don't race.
# The servers must not inherit fd 9 (they would hold the lock forever): see 9>&- below.
LOCKED=0
take_lock() {
  ((LOCKED == 0)) || return 0
  LOCKED=1
  command -v flock >/dev/null 2>&1 || return 0
  mkdir -p "$STATE_DIR"
  exec 9>"$STATE_DIR/.lock"
  flock -w 180 9 || die "another local-infra.sh run holds $STATE_DIR/.lock"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------- prerequisites

java_major() {
  local line
  line=$("$JAVA" -version 2>&1 | head -n 1) || return 1
  # 'openjdk version "17.0.15" ...' or 'java version "1.8.0_392"'
  [[ $line =~ \"([0-9]+)(\.([0-9]+))? ]] || return 1
  if [[ ${BASH_REMATCH[1]} == 1 ]]; then echo "${BASH_REMATCH[3]}"; else echo "${BASH_REMATCH[1]}"; fi
}

kafka_libs_complete() { [[ -f $KAFKA_LIBS_MARKER && -f $KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar ]]; }

# Prints the PostgreSQL bin dir. Prefers the version that created an existing data dir.
pg_bindir() {
  if [[ -n ${LOCAL_PG_BINDIR:-} ]]; then
    [[ -x $LOCAL_PG_BINDIR/initdb && -x $LOCAL_PG_BINDIR/pg_ctl ]] || return 1
    echo "$LOCAL_PG_BINDIR"
    return 0
  fi
  if [[ -f $PG_DATA/PG_VERSION ]]; then
    local existing
    existing=/usr/lib/postgresql/$(<"$PG_DATA/PG_VERSION")/bin
    if [[ -x $existing/pg_ctl ]]; then echo "$existing"; return 0; fi
  fi
  local dir best=""
  for dir in /usr/lib/postgresql/*/bin; do
    [[ -x $dir/initdb && -x $dir/pg_ctl ]] && best+="$dir"$'\n'
  done
  [[ -n $best ]] || return 1
  printf '%s' "$best" | sort -V | tail -n 1
}

install_postgres_packages() {
  command -v apt-get >/dev/null 2>&1 || return 1
  local out
  out=$(mktemp)
  log "installing PostgreSQL with apt-get (one-time)..."
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } >"$out" 2>&1; then
    cat "$out" >&2
    rm -f "$out"
    return 1
  fi
  rm -f "$out"
}

fetch_kafka_libs() {
  local tmp out started
  tmp=$CACHE_DIR/kafka-$KAFKA_VERSION/libs.tmp.$$
  out=$CACHE_DIR/kafka-$KAFKA_VERSION/mvn.log
  rm -rf "$tmp"
  mkdir -p "$tmp"
  started=$SECONDS
  log "fetching Kafka $KAFKA_VERSION jars with maven..."
  if ! mvn -q -B -f "$SCRIPT_DIR/kafka/pom.xml" \
    -Dkafka.version="$KAFKA_VERSION" -Dkafka.libs.dir="$tmp" \
    dependency:copy-dependencies >"$out" 2>&1; then
    cat "$out" >&2
    rm -rf "$tmp"
    die "maven could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION (output above)"
  fi
  [[ -f $tmp/kafka_2.13-$KAFKA_VERSION.jar ]] || die "maven finished but kafka_2.13-$KAFKA_VERSION.jar is missing in $tmp"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
  echo "$KAFKA_VERSION" >"$KAFKA_LIBS_MARKER"
  log "Kafka jars cached in $KAFKA_LIBS ($((SECONDS - started)) s)"
}

cmd_install() {
  local what=$1 missing=() major
  if [[ $what != postgres ]]; then
    if ! command -v "$JAVA" >/dev/null 2>&1; then
      missing+=("missing: Java >= 17 (apt-get install -y openjdk-17-jre-headless)")
    elif ! major=$(java_major) || ((major < 17)); then
      missing+=("missing: Java >= 17, found '$("$JAVA" -version 2>&1 | head -n 1)' (apt-get install -y openjdk-17-jre-headless, or set JAVA_HOME)")
    fi
    if ! kafka_libs_complete && ! command -v mvn >/dev/null 2>&1; then
      missing+=("missing: Maven, needed once to fetch the Kafka jars (apt-get install -y maven)")
    fi
  fi
  if [[ $what != kafka ]] && ! pg_bindir >/dev/null; then
    if is_root && install_postgres_packages && pg_bindir >/dev/null; then
      pg_locate
    elif is_root; then
      missing+=("missing: PostgreSQL server binaries under /usr/lib/postgresql/<ver>/bin and apt-get could not install them (install postgresql, or set LOCAL_PG_BINDIR)")
    else
      missing+=("missing: PostgreSQL server binaries under /usr/lib/postgresql/<ver>/bin (sudo apt-get install -y postgresql, or set LOCAL_PG_BINDIR)")
    fi
  fi
  if [[ $what != kafka ]] && is_root && ! id -u postgres >/dev/null 2>&1; then
    missing+=("missing: a 'postgres' system user to run PostgreSQL as (running as root)")
  fi
  if ((${#missing[@]})); then
    local m
    for m in "${missing[@]}"; do log "$m"; done
    exit 1
  fi
  if [[ $what != postgres ]] && ! kafka_libs_complete; then
    take_lock
    kafka_libs_complete || fetch_kafka_libs
  fi
}

# ---------------------------------------------------------------- kafka

kafka_pid() {
  local pid
  [[ -f $KAFKA_PID ]] || return 1
  pid=$(<"$KAFKA_PID")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Guard against a recycled pid.
  if [[ -r /proc/$pid/cmdline ]]; then
    local cmdline
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline")
    [[ $cmdline == *" kafka.Kafka "* ]] || return 1
  fi
  echo "$pid"
}

kafka_java() {
  "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$KAFKA_LOG4J" -cp "$KAFKA_LIBS/*" "$@"
}

write_kafka_props() {
  cat >"$KAFKA_PROPS" <<EOF
# Generated by scripts/local-infra.sh on every start; edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$KAFKA_DATA

# Single node: every internal topic must have replication factor 1.
offsets.topic.replication.factor=1
# 50 partitions (the default) slow the first consumer-group join on one small node.
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1
num.partitions=1

# The project creates its topics (and their retention) with an admin client.
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0

# The default 128 MiB cleaner buffer is a quarter of our small heap.
log.cleaner.dedupe.buffer.size=33554432
EOF
}

kafka_format_once() {
  [[ -f $KAFKA_DATA/meta.properties ]] && return 0
  local id out
  mkdir -p "$KAFKA_DATA"
  out=$KAFKA_STATE/format.log
  id=$(kafka_java kafka.tools.StorageTool random-uuid 2>"$out") || { cat "$out" >&2; die "kafka: random-uuid failed"; }
  id=$(printf '%s\n' "$id" | tail -n 1)
  [[ $id =~ ^[A-Za-z0-9_-]{22}$ ]] || { cat "$out" >&2; die "kafka: unexpected cluster id '$id'"; }
  if ! kafka_java kafka.tools.StorageTool format -t "$id" -c "$KAFKA_PROPS" >>"$out" 2>&1; then
    cat "$out" >&2
    die "kafka: storage format failed"
  fi
  log "kafka: formatted storage (cluster id $id)"
}

# Launches the broker in the background and sets KAFKA_LAUNCHED=1;
# kafka_wait_ready then checks it came up.
KAFKA_LAUNCHED=0
kafka_launch() {
  local pid port
  if pid=$(kafka_pid); then
    log "kafka: already running (pid $pid, 127.0.0.1:$KAFKA_PORT)"
    return 0
  fi
  rm -f "$KAFKA_PID"
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    port_open "$port" && die "kafka: port $port is already in use by another process (set LOCAL_KAFKA_PORT / LOCAL_KAFKA_CONTROLLER_PORT)"
  done
  mkdir -p "$KAFKA_STATE"
  write_kafka_props
  kafka_format_once
  echo "===== $(date -u +%FT%TZ) local-infra.sh: starting Kafka $KAFKA_VERSION =====" >>"$KAFKA_LOG"
  # setsid: own session, so the broker outlives this script and its terminal.
  # nohup -> setsid -> java all exec in place, so $! is the broker's pid.
  nohup setsid "$JAVA" -Xms256m -Xmx512m -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_LOG4J" -cp "$KAFKA_LIBS/*" \
    kafka.Kafka "$KAFKA_PROPS" >>"$KAFKA_LOG" 2>&1 </dev/null 9>&- &
  echo $! >"$KAFKA_PID"
  KAFKA_LAUNCHED=1
  log "kafka: starting (pid $!)..."
}

kafka_wait_ready() {
  local deadline=$((SECONDS + KAFKA_READY_TIMEOUT)) pid
  pid=$(<"$KAFKA_PID")
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "kafka: broker exited during start-up; last 50 lines of $KAFKA_LOG:"
      tail -n 50 "$KAFKA_LOG" >&2 || true
      rm -f "$KAFKA_PID"
      exit 1
    fi
    if port_open "$KAFKA_PORT" &&
      timeout 20 "$JAVA" -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
        -Dlog4j2.configurationFile="$KAFKA_LOG4J" -cp "$KAFKA_LIBS/*" \
        org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list \
        >/dev/null 2>&1; then
      log "kafka: ready on 127.0.0.1:$KAFKA_PORT (pid $pid)"
      return 0
    fi
    sleep 1
  done
  log "kafka: not ready after ${KAFKA_READY_TIMEOUT}s; last 50 lines of $KAFKA_LOG:"
  tail -n 50 "$KAFKA_LOG" >&2 || true
  exit 1
}

kafka_stop() {
  local pid i
  if ! pid=$(kafka_pid); then
    rm -f "$KAFKA_PID"
    log "kafka: not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "kafka: still running after 30 s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$KAFKA_PID"
  log "kafka: stopped"
}

# ---------------------------------------------------------------- postgres

# The first directory on the way to $1 that the postgres user cannot enter; fails when there is
# none. Only existing directories are checked (what does not exist yet is created by root).
pg_blocked_at() {
  local path="" part
  local -a parts
  IFS=/ read -r -a parts <<<"${1#/}"
  for part in "${parts[@]}"; do
    [[ -n $part ]] || continue
    path+=/$part
    [[ -e $path ]] || return 1
    if ! runuser -u postgres -- test -x "$path" 2>/dev/null; then
      echo "$path"
      return 0
    fi
  done
  return 1
}

# Sets PG_STATE and the paths under it: the state dir's postgres/ unless, run as root, the
# postgres user cannot reach it (then PG_OUTSIDE_DIR). An existing cluster stays where it is.
pg_locate() {
  local inside=$STATE_DIR/postgres blocked
  PG_STATE=$inside PG_WHY_OUTSIDE=""
  if is_root; then
    if [[ -f $PG_OUTSIDE_DIR/postgres/data/PG_VERSION ]]; then
      PG_STATE=$PG_OUTSIDE_DIR/postgres
      PG_WHY_OUTSIDE="its cluster was created there"
    elif [[ ! -f $inside/data/PG_VERSION ]] && id -u postgres >/dev/null 2>&1 &&
      blocked=$(pg_blocked_at "$inside"); then
      PG_STATE=$PG_OUTSIDE_DIR/postgres
      PG_WHY_OUTSIDE="user 'postgres' cannot enter $blocked"
    fi
  fi
  PG_DATA=$PG_STATE/data
  PG_RUN=$PG_STATE/run
  PG_LOG=$PG_STATE/postgres.log
}
pg_locate

PG_BIN=""
pg_init_bin() { [[ -n $PG_BIN ]] || PG_BIN=$(pg_bindir) || die "postgres: server binaries not found (run: $0 install)"; }

# PostgreSQL refuses to run as root: as root, run its tools as the postgres user.
as_pg() {
  if is_root; then
    (cd "$PG_STATE" && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

pg_running() {
  [[ -f $PG_DATA/PG_VERSION ]] || return 1
  pg_init_bin
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

pg_pid() { head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null; }

# The postgres user must reach the cluster through every parent directory (a cluster created
# in the state dir stays there; if the way to it has been closed since, say so).
pg_check_traversal() {
  local blocked
  if blocked=$(pg_blocked_at "$PG_STATE"); then
    die "postgres: user 'postgres' cannot enter $blocked (chmod o+x $blocked, or move the cluster in $PG_STATE away to have one made where it can reach)"
  fi
}

pg_psql() {
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$PG_PORT" -U postgres -d postgres
}

pg_start() {
  pg_init_bin
  if pg_running; then
    log "postgres: already running (pid $(pg_pid), 127.0.0.1:$PG_PORT)"
    return 0
  fi
  port_open "$PG_PORT" && die "postgres: port $PG_PORT is already in use by another process (set LOCAL_PG_PORT)"
  if [[ -n $PG_WHY_OUTSIDE ]]; then
    log "postgres: cluster in $PG_STATE, outside $STATE_DIR ($PG_WHY_OUTSIDE)"
    mkdir -p "$PG_OUTSIDE_DIR"
    chmod 755 "$PG_OUTSIDE_ROOT" "$PG_OUTSIDE_DIR"
    echo "$STATE_DIR" >"$PG_OUTSIDE_DIR/state-dir"
  fi
  mkdir -p "$PG_STATE" "$PG_RUN"
  chmod 700 "$PG_RUN"
  if is_root; then
    [[ $(stat -c %U "$PG_STATE") == postgres && $(stat -c %U "$PG_RUN") == postgres ]] ||
      chown -R postgres:postgres "$PG_STATE"
    pg_check_traversal
  fi
  if [[ ! -f $PG_DATA/PG_VERSION ]]; then
    local out=$PG_STATE/initdb.log locale_opt=(--no-locale) locales
    locales=$(locale -a 2>/dev/null || true)
    if grep -qix 'c\.utf-\?8' <<<"$locales"; then locale_opt=(--locale=C.UTF-8); fi
    if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth-local=trust \
      --auth-host=scram-sha-256 --encoding=UTF8 "${locale_opt[@]}" >"$out" 2>&1; then
      cat "$out" >&2
      die "postgres: initdb failed"
    fi
    log "postgres: created cluster in $PG_DATA"
  fi
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -w -l "$PG_LOG" \
    -o "-p $PG_PORT -k $PG_RUN -c listen_addresses=127.0.0.1" start >/dev/null 2>&1 9>&-; then
    log "postgres: failed to start; last 50 lines of $PG_LOG:"
    tail -n 50 "$PG_LOG" >&2 || true
    exit 1
  fi
  pg_psql <<SQL
SELECT format('CREATE ROLE %I', '$PG_APP_USER')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_APP_USER')\\gexec
ALTER ROLE $PG_APP_USER LOGIN CREATEDB CREATEROLE PASSWORD '$PG_APP_PASSWORD';
-- The tests drop their databases WITH (FORCE): that ends sessions of other roles too (an
-- autovacuum worker busy on the database, a read role's session), which needs this role.
GRANT pg_signal_backend TO $PG_APP_USER;
SELECT format('CREATE DATABASE %I OWNER %I', '$PG_APP_DB', '$PG_APP_USER')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_APP_DB')\\gexec
SQL
  log "postgres: ready on 127.0.0.1:$PG_PORT (pid $(pg_pid))"
}

pg_stop() {
  if ! pg_running; then
    log "postgres: not running"
    return 0
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
  log "postgres: stopped"
}

# ---------------------------------------------------------------- commands


cmd_start() {
  local what=$1
  take_lock
  cmd_install "$what"
  # Postgres starts while the broker boots.
  if [[ $what != postgres ]]; then kafka_launch; fi
  if [[ $what != kafka ]]; then pg_start; fi
  if ((KAFKA_LAUNCHED)); then kafka_wait_ready; fi
}

cmd_stop() {
  local what=$1
  take_lock
  if [[ $what != postgres ]]; then kafka_stop; fi
  if [[ $what != kafka ]]; then pg_stop; fi
}

cmd_status() {
  local what=$1 rc=0 pid
  if [[ $what != postgres ]]; then
    if pid=$(kafka_pid); then
      echo "kafka: running on 127.0.0.1:$KAFKA_PORT (pid $pid)"
    else
      echo "kafka: stopped (port $KAFKA_PORT)"
      rc=3
    fi
  fi
  if [[ $what != kafka ]]; then
    if pg_bindir >/dev/null && pg_running; then
      echo "postgres: running on 127.0.0.1:$PG_PORT (pid $(pg_pid), data in $PG_DATA)"
    else
      echo "postgres: stopped (port $PG_PORT)"
      rc=3
    fi
  fi
  return $rc
}

cmd_logs() {
  local f found=0
  for f in "$KAFKA_LOG" "$PG_LOG" "$KAFKA_STATE/format.log" "$PG_STATE/initdb.log"; do
    [[ -f $f ]] || continue
    found=1
    echo "===== $f (last 200 lines) ====="
    tail -n 200 "$f"
  done
  ((found)) || log "no log files in $STATE_DIR"
}

cmd_env() {
  echo "export KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
  echo "export DATABASE_URL=postgres://$PG_APP_USER:$PG_APP_PASSWORD@127.0.0.1:$PG_PORT/$PG_APP_DB"
}

cmd_reset() {
  case $STATE_DIR in
    / | "$REPO_ROOT" | "$HOME" | "$CACHE_DIR") die "refusing to delete $STATE_DIR" ;;
  esac
  cmd_stop all
  rm -rf "$STATE_DIR"
  log "deleted $STATE_DIR"
  if [[ -d $PG_OUTSIDE_DIR ]]; then
    rm -rf "$PG_OUTSIDE_DIR"
    rmdir "$PG_OUTSIDE_ROOT" 2>/dev/null || true
    log "deleted $PG_OUTSIDE_DIR (its PostgreSQL cluster)"
  fi
}

main() {
  local cmd=${1:-} target=${2:-all}
  case $cmd in
    install | start | stop | status) (($# <= 2)) || usage ;;
    logs | env | reset) (($# == 1)) || usage ;;
    *) usage ;;
  esac
  case $target in all | kafka | postgres) ;; *) usage ;; esac
  case $cmd in
    install) cmd_install "$target" ;;
    start) cmd_start "$target" ;;
    stop) cmd_stop "$target" ;;
    status) cmd_status "$target" || exit $? ;;
    logs) cmd_logs ;;
    env) cmd_env ;;
    reset) cmd_reset ;;
  esac
}

main "$@"
