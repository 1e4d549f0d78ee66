#!/usr/bin/env bash
# Runs the whole system on this machine: installs what is missing, starts the local Kafka broker
# and PostgreSQL (unless KAFKA_BROKERS / DATABASE_URL point elsewhere), creates the topics, runs
# the migrations, then starts every app as its own process with its log in .local/logs/
# (CASHFLOW_LOCAL_DIR moves .local/, as it does for scripts/local-infra.sh).
# Ctrl-C stops the apps, then the infrastructure this script started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
infra=scripts/local-infra.sh
local_dir=${CASHFLOW_LOCAL_DIR:-$root/.local}
case $local_dir in /*) ;; *) local_dir=$PWD/$local_dir ;; esac
logs=$local_dir/logs
say() { printf '[run-local] %s\n' "$*" >&2; }
. scripts/require-node.sh
require_node run-local start

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages"
  # npm install, not npm ci: the lock file records the optional native packages of linux-x64
  # only, which npm ci rejects as out of sync; npm install keeps the locked versions.
  npm install --no-audit --no-fund --loglevel=error
fi

started_infra=()
pids=()
names=()
stopping=0
shutdown() {
  [ "$stopping" = 1 ] && return
  stopping=1
  say "stopping apps"
  for pid in ${pids[@]+"${pids[@]}"}; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in ${pids[@]+"${pids[@]}"}; do wait "$pid" 2>/dev/null || true; done
  for service in ${started_infra[@]+"${started_infra[@]}"}; do "$infra" stop "$service" || true; done
  say "stopped"
}
trap 'shutdown; exit 0' INT TERM
trap shutdown EXIT

# Local infrastructure, unless the environment points at external Kafka / PostgreSQL.
external_kafka=${KAFKA_BROKERS:-}
external_db=${DATABASE_URL:-}
for service in kafka postgres; do
  if [ "$service" = kafka ] && [ -n "$external_kafka" ]; then continue; fi
  if [ "$service" = postgres ] && [ -n "$external_db" ]; then continue; fi
  if ! "$infra" status "$service" >/dev/null 2>&1; then
    "$infra" start "$service"
    started_infra+=("$service")
  fi
done
eval "$("$infra" env)"
[ -n "$external_kafka" ] && export KAFKA_BROKERS=$external_kafka
[ -n "$external_db" ] && export DATABASE_URL=$external_db

# Local secrets, made once and kept in .local/ (mode 600): the token encryption key and an admin
# bearer token for the access-token API. Variables already set in the environment win.
secrets=$local_dir/secrets.env
if [ ! -f "$secrets" ]; then
  mkdir -p "$local_dir"
  admin_token=$(node -e 'process.stdout.write(require("crypto").randomBytes(24).toString("hex"))')
  (
    umask 077
    {
      echo "TOKEN_ENCRYPTION_KEYS=local:$(node -e 'process.stdout.write(require("crypto").randomBytes(32).toString("base64"))')"
      echo "ADMIN_API_TOKENS=local-ops:$admin_token"
      echo "ADMIN_API_TOKEN=$admin_token"
    } >"$secrets"
  )
fi
# Added after the file was first made: the projector read API's token.
if ! grep -q '^PROJECTOR_API_TOKENS=' "$secrets"; then
  read_token=$(node -e 'process.stdout.write(require("crypto").randomBytes(24).toString("hex"))')
  {
    echo "PROJECTOR_API_TOKENS=local-ops:$read_token"
    echo "PROJECTOR_API_TOKEN=$read_token"
  } >>"$secrets"
elif ! grep -q '^PROJECTOR_API_TOKEN=' "$secrets"; then
  tokens=$(grep '^PROJECTOR_API_TOKENS=' "$secrets")
  echo "PROJECTOR_API_TOKEN=${tokens#*:}" >>"$secrets"
fi
while IFS='=' read -r name value; do
  [ -n "$name" ] && [ -z "${!name:-}" ] && export "$name=$value"
done <"$secrets"

say "building"
npm run --silent build

node dist/apps/cli/src/main.js topics create >/dev/null
node dist/apps/cli/src/main.js migrate >&2

mkdir -p "$logs"
export REFRESH_WORKER_PORT=${REFRESH_WORKER_PORT:-8081}
export WEBHOOK_INGRESS_PORT=${WEBHOOK_INGRESS_PORT:-8080}
export WEBHOOK_INGRESS_ADMIN_PORT=${WEBHOOK_INGRESS_ADMIN_PORT:-8082}
export PROJECTOR_PORT=${PROJECTOR_PORT:-8083}
export REPORT_FETCHER_PORT=${REPORT_FETCHER_PORT:-8084}
export PLAID_SANDBOX_PORT=${PLAID_SANDBOX_PORT:-8090}

# start_app NAME [NODE FLAG...]
start_app() {
  local name=$1
  shift
  node "$@" "dist/apps/$name/src/main.js" >"$logs/$name.log" 2>&1 &
  pids+=("$!")
  names+=("$name")
}
# Demo Items for the local sandbox, their webhooks pointed at this ingress.
demo_items=$local_dir/demo-items.json
sed "s#@WEBHOOK_URL@#http://127.0.0.1:$WEBHOOK_INGRESS_PORT/webhooks/plaid#" \
  "$root/scripts/demo-items.json" >"$demo_items"
export PLAID_SANDBOX_SEED_FILE=${PLAID_SANDBOX_SEED_FILE:-$demo_items}
start_app plaid-sandbox
# --heap-growing-percent=20: V8 grows the heap by 20% rather than its default, so garbage is
# collected sooner. --max-semi-space-size=32: Node 24's young generation grows to 64 MB semi-spaces
# (128 MB) under load; 32 MB ones keep peak RSS with 1,000 calls in flight at about 250 MB instead
# of 310, for about 4% more CPU (16 MB: 215 MB, 17% more CPU). npm run bench:worker shows both.
start_app refresh-worker --heap-growing-percent=20 --max-semi-space-size=32
start_app webhook-ingress
# --max-semi-space-size=16: the projector's young generation stays at 16 MB semi-spaces instead of
# Node 24's 64. --heap-growing-percent=50: its old space grows by half between collections rather
# than V8's up to fourfold. Peak RSS while it catches up about 250 MB instead of 400, for about a
# fifth more CPU then, catch-up within the runs' noise (npm run bench:projector; README).
start_app projector --max-semi-space-size=16 --heap-growing-percent=50
# --max-semi-space-size=8 --heap-growing-percent=50: with V8's defaults the fetcher's young
# generation reaches 128 MB and its old space fills with promoted pages before a full collection:
# peak RSS 265-280 MB instead of 410-450 while it pages, the same transactions/s, about 8% more
# CPU per transaction (npm run bench:fetcher; README).
start_app report-fetcher --max-semi-space-size=8 --heap-growing-percent=50

wait_ready() {
  local name=$1 url=$2 pid=$3
  for _ in $(seq 1 150); do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "$name exited during start-up; last lines of $logs/$name.log:"
      tail -n 20 "$logs/$name.log" >&2
      return 1
    fi
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  say "$name not ready after 30 s; see $logs/$name.log"
  return 1
}
wait_ready plaid-sandbox "http://127.0.0.1:$PLAID_SANDBOX_PORT/health/ready" "${pids[0]}"
wait_ready refresh-worker "http://127.0.0.1:$REFRESH_WORKER_PORT/health/ready" "${pids[1]}"
wait_ready webhook-ingress "http://127.0.0.1:$WEBHOOK_INGRESS_ADMIN_PORT/health/ready" "${pids[2]}"
wait_ready projector "http://127.0.0.1:$PROJECTOR_PORT/health/ready" "${pids[3]}"
wait_ready report-fetcher "http://127.0.0.1:$REPORT_FETCHER_PORT/health/ready" "${pids[4]}"

# Register the demo Items' (fake) access tokens with the worker; running again replaces them.
export REFRESH_WORKER_URL=http://127.0.0.1:$REFRESH_WORKER_PORT
export PROJECTOR_URL=http://127.0.0.1:$PROJECTOR_PORT
export REPORT_FETCHER_URL=http://127.0.0.1:$REPORT_FETCHER_PORT
# Where everything is, for the CLI in another terminal.
cli_env=$local_dir/cli.env
(
  umask 077
  {
    echo "KAFKA_BROKERS=$KAFKA_BROKERS"
    echo "KAFKA_TOPIC_PREFIX=${KAFKA_TOPIC_PREFIX:-}"
    echo "DATABASE_URL=$DATABASE_URL"
    echo "REFRESH_WORKER_URL=$REFRESH_WORKER_URL"
    echo "PROJECTOR_URL=$PROJECTOR_URL"
    echo "REPORT_FETCHER_URL=$REPORT_FETCHER_URL"
  } >"$cli_env"
)
if [ "${PLAID_ENV:-local}" = local ] && [ "$PLAID_SANDBOX_SEED_FILE" = "$demo_items" ]; then
  node -e 'for (const i of JSON.parse(require("fs").readFileSync(process.argv[1]))) console.log(i.item_id, i.access_token)' \
    "$demo_items" | while read -r item token; do
    echo "$token" | node dist/apps/cli/src/main.js items add "$item" >/dev/null
  done
  demo="demo Items       item-demo-ready, item-demo-flaky, item-demo-login-required, item-demo-report-error"
fi

cat >&2 <<SUMMARY

cashflow-refresh is running. Ctrl-C stops everything.

  Kafka            $KAFKA_BROKERS
  PostgreSQL       ${DATABASE_URL/:\/\/*@/://***@}
  plaid-sandbox    http://127.0.0.1:$PLAID_SANDBOX_PORT      (health: /health/ready, metrics: /metrics)
  refresh-worker   http://127.0.0.1:$REFRESH_WORKER_PORT/health/ready
  webhook-ingress  admin http://127.0.0.1:$WEBHOOK_INGRESS_ADMIN_PORT/health/ready
  projector        http://127.0.0.1:$PROJECTOR_PORT/health/ready   (read API: /items, /openapi.json)
  report-fetcher   http://127.0.0.1:$REPORT_FETCHER_PORT/health/ready
  logs             $logs/<app>.log
  secrets          $secrets (ADMIN_API_TOKEN for the CLI, PROJECTOR_API_TOKENS for the read API)
  traces           ${OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:-${OTEL_EXPORTER_OTLP_ENDPOINT:-off (set OTEL_EXPORTER_OTLP_ENDPOINT; README: Traces)}}
  ${demo:-}

Try, in another terminal:
  set -a; . $secrets; . $cli_env; set +a
  npx cashflow-refresh refresh item-demo-ready --wait       # requested -> accepted -> ready -> fetched
  npx cashflow-refresh refresh item-demo-login-required --wait
  npx cashflow-refresh status item-demo-ready
  npx cashflow-refresh list --status failed
  npx cashflow-refresh events tail
Register your own Item:  echo access-sandbox-... | npx cashflow-refresh items add ITEM_ID

SUMMARY

# Stay up until Ctrl-C, or until an app exits on its own.
while :; do
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      say "${names[$i]} exited; see $logs/${names[$i]}.log"
      exit 1
    fi
  done
  sleep 1
done
