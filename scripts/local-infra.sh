#!/usr/bin/env bash
# Real local infrastructure without Docker: Apache Kafka (KRaft; one combined broker+controller
# node, or three replicating ones with LOCAL_KAFKA_NODES=3) and one project-local PostgreSQL
# cluster, all on 127.0.0.1.
# Idempotent: every subcommand can be run again; a second start is a no-op.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$SCRIPT_DIR")

abspath() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }

STATE_DIR=$(abspath "${CASHFLOW_LOCAL_DIR:-$REPO_ROOT/.local}")
CACHE_DIR=$(abspath "${CASHFLOW_CACHE_DIR:-$REPO_ROOT/.cache}")

KAFKA_VERSION=${KAFKA_VERSION:-4.3.1}
KAFKA_NODES=${LOCAL_KAFKA_NODES:-1}
[[ $KAFKA_NODES == 1 || $KAFKA_NODES == 3 ]] || { echo "[local-infra] LOCAL_KAFKA_NODES must be 1 or 3, not '$KAFKA_NODES'" >&2; exit 2; }
KAFKA_PORT=${LOCAL_KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${LOCAL_KAFKA_CONTROLLER_PORT:-19093}
# Node n's client and controller ports: LOCAL_KAFKA_PORTS / LOCAL_KAFKA_CONTROLLER_PORTS (comma
# lists, one port a node) or, by default, the first node's ports + 2 for each next node
# (19092/19093, 19094/19095, 19096/19097).
KAFKA_PORTS=() KAFKA_CONTROLLER_PORTS=()
IFS=, read -r -a KAFKA_PORTS <<<"${LOCAL_KAFKA_PORTS:-}"
IFS=, read -r -a KAFKA_CONTROLLER_PORTS <<<"${LOCAL_KAFKA_CONTROLLER_PORTS:-}"
for ((n = ${#KAFKA_PORTS[@]}; n < KAFKA_NODES; n++)); do KAFKA_PORTS[n]=$((KAFKA_PORT + 2 * n)); done
for ((n = ${#KAFKA_CONTROLLER_PORTS[@]}; n < KAFKA_NODES; n++)); do
  KAFKA_CONTROLLER_PORTS[n]=$((KAFKA_CONTROLLER_PORT + 2 * n))
done
KAFKA_LIBS=$CACHE_DIR/kafka-$KAFKA_VERSION/libs
KAFKA_LIBS_MARKER=$KAFKA_LIBS/.complete
# One node keeps the layout it always had; three live apart (their storage is formatted for a
# three-voter quorum), a dir per node.
if ((KAFKA_NODES == 1)); then KAFKA_STATE=$STATE_DIR/kafka; else KAFKA_STATE=$STATE_DIR/kafka-3; fi
KAFKA_LOG4J=$SCRIPT_DIR/kafka/log4j2.properties
KAFKA_READY_TIMEOUT=90

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
usage: $(basename "$0") <command> [kafka|kafka-N|postgres]

  install [kafka|postgres]  check prerequisites, fetch the Kafka jars / install PostgreSQL
  start   [kafka|kafka-N|postgres]
                            start (default all); no-op when already running
  stop    [kafka|kafka-N|postgres]
                            stop (default all)
  kill    kafka-N           kill -9 one Kafka node (a crash, for fault tests)
  status  [kafka|kafka-N|postgres]
                            one line per service; exit 0 if all run, 3 otherwise
  logs                      last 200 lines of each log file
  env                       print exports: eval "\$($(basename "$0") env)"
  reset                     stop both and delete the state dir ($STATE_DIR)

Kafka: $KAFKA_NODES node(s), $(kafka_bootstrap) (controllers ${KAFKA_CONTROLLER_PORTS[*]}),
       version $KAFKA_VERSION; kafka-N is node N alone (1..$KAFKA_NODES)
PostgreSQL: 127.0.0.1:$PG_PORT, database/user/password $PG_APP_DB/$PG_APP_USER/$PG_APP_PASSWORD,
            data in $PG_DATA
Environment: CASHFLOW_LOCAL_DIR CASHFLOW_CACHE_DIR KAFKA_VERSION LOCAL_KAFKA_NODES (1 or 3)
             LOCAL_KAFKA_PORT LOCAL_KAFKA_CONTROLLER_PORT LOCAL_KAFKA_PORTS
             LOCAL_KAFKA_CONTROLLER_PORTS LOCAL_PG_PORT LOCAL_PG_BINDIR JAVA_HOME
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

# Node n's paths and ports (n = 1..KAFKA_NODES).
node_dir() { if ((KAFKA_NODES == 1)); then echo "$KAFKA_STATE"; else echo "$KAFKA_STATE/node-$1"; fi; }
node_pidfile() { echo "$(node_dir "$1")/kafka.pid"; }
node_log() { echo "$(node_dir "$1")/kafka.log"; }
node_port() { echo "${KAFKA_PORTS[$1 - 1]}"; }
node_controller_port() { echo "${KAFKA_CONTROLLER_PORTS[$1 - 1]}"; }
node_name() { if ((KAFKA_NODES == 1)); then echo kafka; else echo "kafka-$1"; fi; }
kafka_bootstrap() {
  local n list=""
  for ((n = 1; n <= KAFKA_NODES; n++)); do list+="${list:+,}127.0.0.1:$(node_port "$n")"; done
  echo "$list"
}

kafka_pid() {
  local pid file
  file=$(node_pidfile "$1")
  [[ -f $file ]] || return 1
  pid=$(<"$file")
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
  local n=$1 voters="" v rf=1 isr=1
  for ((v = 1; v <= KAFKA_NODES; v++)); do
    voters+="${voters:+,}$v@127.0.0.1:$(node_controller_port "$v")"
  done
  if ((KAFKA_NODES == 3)); then rf=3 isr=2; fi
  cat >"$(node_dir "$n")/server.properties" <<EOF
# Generated by scripts/local-infra.sh on every start; edits are overwritten.
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(node_port "$n"),CONTROLLER://127.0.0.1:$(node_controller_port "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(node_port "$n")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$(node_dir "$n")/data

# One node: every topic has one replica. Three: every topic, internal ones included, has three,
# and a write acknowledged by all in-sync replicas (acks=all) is on at least two of them.
offsets.topic.replication.factor=$rf
# 50 partitions (the default) slow the first consumer-group join on small nodes.
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
default.replication.factor=$rf
min.insync.replicas=$isr
num.partitions=1
unclean.leader.election.enable=false

# The project creates its topics (and their retention) with an admin client.
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0

# The default 128 MiB cleaner buffer is a quarter of our small heap.
log.cleaner.dedupe.buffer.size=33554432
EOF
}

# One cluster id for every node of the cluster, made once.
kafka_cluster_id() {
  local file=$KAFKA_STATE/cluster.id id out=$KAFKA_STATE/format.log
  if [[ -f $file ]]; then
    cat "$file"
    return 0
  fi
  id=$(kafka_java kafka.tools.StorageTool random-uuid 2>"$out") || { cat "$out" >&2; die "kafka: random-uuid failed"; }
  id=$(printf '%s\n' "$id" | tail -n 1)
  [[ $id =~ ^[A-Za-z0-9_-]{22}$ ]] || { cat "$out" >&2; die "kafka: unexpected cluster id '$id'"; }
  echo "$id" >"$file"
  echo "$id"
}

kafka_format_once() {
  local n=$1 dir id out
  dir=$(node_dir "$n")
  [[ -f $dir/data/meta.properties ]] && return 0
  mkdir -p "$dir/data"
  id=$(kafka_cluster_id)
  out=$KAFKA_STATE/format.log
  # A static quorum (controller.quorum.voters) is formatted without --standalone.
  if ! kafka_java kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" >>"$out" 2>&1; then
    cat "$out" >&2
    die "kafka: storage format of node $n failed"
  fi
  log "$(node_name "$n"): formatted storage (cluster id $id)"
}

# Launches node n in the background and adds it to KAFKA_LAUNCHED; kafka_wait_ready then
# checks it came up.
KAFKA_LAUNCHED=()
kafka_launch() {
  local n=$1 pid port dir heap
  dir=$(node_dir "$n")
  if pid=$(kafka_pid "$n"); then
    log "$(node_name "$n"): already running (pid $pid, 127.0.0.1:$(node_port "$n"))"
    return 0
  fi
  rm -f "$(node_pidfile "$n")"
  for port in "$(node_port "$n")" "$(node_controller_port "$n")"; do
    port_open "$port" && die "$(node_name "$n"): port $port is already in use by another process (set LOCAL_KAFKA_PORT / LOCAL_KAFKA_CONTROLLER_PORT, or LOCAL_KAFKA_PORTS / LOCAL_KAFKA_CONTROLLER_PORTS)"
  done
  mkdir -p "$dir"
  write_kafka_props "$n"
  kafka_format_once "$n"
  # Three JVMs share the machine: a smaller heap each.
  if ((KAFKA_NODES == 1)); then heap=(-Xms256m -Xmx512m); else heap=(-Xms128m -Xmx384m); fi
  echo "===== $(date -u +%FT%TZ) local-infra.sh: starting Kafka $KAFKA_VERSION node $n =====" >>"$(node_log "$n")"
  # setsid: own session, so the broker outlives this script and its terminal.
  # nohup -> setsid -> java all exec in place, so $! is the broker's pid.
  nohup setsid "$JAVA" "${heap[@]}" -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_LOG4J" -cp "$KAFKA_LIBS/*" \
    kafka.Kafka "$dir/server.properties" >>"$(node_log "$n")" 2>&1 </dev/null 9>&- &
  echo $! >"$(node_pidfile "$n")"
  KAFKA_LAUNCHED+=("$n")
  log "$(node_name "$n"): starting (pid $!)..."
}

# A node is ready once it answers a metadata request on its own port. A node of three needs a
# second voter up to elect a controller, so every node is launched before any is waited for.
kafka_wait_ready() {
  local n=$1 deadline=$((SECONDS + KAFKA_READY_TIMEOUT)) pid port
  pid=$(<"$(node_pidfile "$n")")
  port=$(node_port "$n")
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$(node_name "$n"): exited during start-up; last 50 lines of $(node_log "$n"):"
      tail -n 50 "$(node_log "$n")" >&2 || true
      rm -f "$(node_pidfile "$n")"
      exit 1
    fi
    if port_open "$port" &&
      timeout 20 "$JAVA" -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
        -Dlog4j2.configurationFile="$KAFKA_LOG4J" -cp "$KAFKA_LIBS/*" \
        org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$port" --list \
        >/dev/null 2>&1; then
      log "$(node_name "$n"): ready on 127.0.0.1:$port (pid $pid)"
      return 0
    fi
    sleep 1
  done
  log "$(node_name "$n"): not ready after ${KAFKA_READY_TIMEOUT}s; last 50 lines of $(node_log "$n"):"
  tail -n 50 "$(node_log "$n")" >&2 || true
  exit 1
}

# Stopping node n: SIGTERM (a controlled shutdown, which hands its leaderships over first) or,
# for `kill`, SIGKILL, as a crash would; kafka_await_stop then waits, and sends SIGKILL after
# 30 s. Every node is signalled before any is waited for: a node that shuts down last, with the
# controller quorum already gone, would otherwise wait out its controlled shutdown.
kafka_signal() {
  local n=$1 signal=$2 pid
  if ! pid=$(kafka_pid "$n"); then
    rm -f "$(node_pidfile "$n")"
    log "$(node_name "$n"): not running"
    return 0
  fi
  kill "-$signal" "$pid" 2>/dev/null || true
}

kafka_await_stop() {
  local n=$1 signal=$2 pid i file
  file=$(node_pidfile "$n")
  [[ -f $file ]] || return 0
  pid=$(<"$file")
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$(node_name "$n"): still running after 30 s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$file"
  if [[ $signal == KILL ]]; then log "$(node_name "$n"): killed"; else log "$(node_name "$n"): stopped"; fi
}

# The Kafka pid files of either layout (one node or three) under the state dir: reset stops
# whatever runs there, whichever LOCAL_KAFKA_NODES it was started with.
kafka_any_pidfiles() {
  local f
  for f in "$STATE_DIR"/kafka/kafka.pid "$STATE_DIR"/kafka-3/node-*/kafka.pid; do
    [[ -f $f ]] && echo "$f"
  done
  return 0
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


# The Kafka nodes a target names: every node for all/kafka, node N for kafka-N.
target_nodes() {
  case $1 in
    all | kafka) seq 1 "$KAFKA_NODES" ;;
    kafka-*) echo "${1#kafka-}" ;;
  esac
}

cmd_start() {
  local what=$1 n
  take_lock
  case $what in kafka-*) cmd_install kafka ;; *) cmd_install "$what" ;; esac
  # Postgres starts while the brokers boot; every node is launched before any is waited for.
  if [[ $what != postgres ]]; then
    for n in $(target_nodes "$what"); do kafka_launch "$n"; done
  fi
  if [[ $what == all || $what == postgres ]]; then pg_start; fi
  for n in "${KAFKA_LAUNCHED[@]}"; do kafka_wait_ready "$n"; done
}

cmd_stop() {
  local what=$1 signal=${2:-TERM} n
  take_lock
  if [[ $what != postgres ]]; then
    for n in $(target_nodes "$what"); do kafka_signal "$n" "$signal"; done
    for n in $(target_nodes "$what"); do kafka_await_stop "$n" "$signal"; done
  fi
  if [[ $what == all || $what == postgres ]]; then pg_stop; fi
}

cmd_status() {
  local what=$1 rc=0 pid n
  if [[ $what != postgres ]]; then
    for n in $(target_nodes "$what"); do
      if pid=$(kafka_pid "$n"); then
        echo "$(node_name "$n"): running on 127.0.0.1:$(node_port "$n") (pid $pid)"
      else
        echo "$(node_name "$n"): stopped (port $(node_port "$n"))"
        rc=3
      fi
    done
  fi
  if [[ $what == all || $what == postgres ]]; then
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
  local n logs=()
  for ((n = 1; n <= KAFKA_NODES; n++)); do logs+=("$(node_log "$n")"); done
  for f in "${logs[@]}" "$PG_LOG" "$KAFKA_STATE/format.log" "$PG_STATE/initdb.log"; do
    [[ -f $f ]] || continue
    found=1
    echo "===== $f (last 200 lines) ====="
    tail -n 200 "$f"
  done
  ((found)) || log "no log files in $STATE_DIR"
}

cmd_env() {
  echo "export KAFKA_BROKERS=$(kafka_bootstrap)"
  echo "export DATABASE_URL=postgres://$PG_APP_USER:$PG_APP_PASSWORD@127.0.0.1:$PG_PORT/$PG_APP_DB"
}

cmd_reset() {
  case $STATE_DIR in
    / | "$REPO_ROOT" | "$HOME" | "$CACHE_DIR") die "refusing to delete $STATE_DIR" ;;
  esac
  cmd_stop all
  local f pid i
  for f in $(kafka_any_pidfiles); do
    pid=$(<"$f")
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
      [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *" kafka.Kafka "* ]]; then
      log "kafka: stopping pid $pid ($f), started with another LOCAL_KAFKA_NODES"
      kill -TERM "$pid" 2>/dev/null || true
      for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
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
    install | start | stop | status | kill) (($# <= 2)) || usage ;;
    logs | env | reset) (($# == 1)) || usage ;;
    *) usage ;;
  esac
  case $target in
    all | kafka | postgres) [[ $cmd != kill ]] || usage ;;
    kafka-[1-9])
      [[ $cmd != install ]] || usage
      ((${target#kafka-} <= KAFKA_NODES)) || die "$target: there are $KAFKA_NODES Kafka node(s) (LOCAL_KAFKA_NODES)"
      ;;
    *) usage ;;
  esac
  case $cmd in
    install) cmd_install "$target" ;;
    start) cmd_start "$target" ;;
    stop) cmd_stop "$target" ;;
    kill) cmd_stop "$target" KILL ;;
    status) cmd_status "$target" || exit $? ;;
    logs) cmd_logs ;;
    env) cmd_env ;;
    reset) cmd_reset ;;
  esac
}

main "$@"
