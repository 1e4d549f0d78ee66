#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs npm packages, the Kafka broker and
# PostgreSQL when missing, starts whichever of the two is not running, runs unit, integration and
# end-to-end tests (arguments, if any, go to one jest run instead), and stops what it started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
infra=scripts/local-infra.sh
. scripts/require-node.sh
require_node test test

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[test] installing npm packages" >&2
  # npm install, not npm ci: the lock file records the optional native packages of linux-x64
  # only, which npm ci rejects as out of sync; npm install keeps the locked versions.
  npm install --no-audit --no-fund --loglevel=error
fi

# kcat (Debian's package): the interop test runs the README's kcat commands.
if ! command -v kcat >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[test] installing kcat with apt-get (one-time)" >&2
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat; } >/dev/null
  else
    echo "[test] kcat is missing (sudo apt-get install -y kcat); the kcat interop test will fail" >&2
  fi
fi

# promtool (Debian's prometheus package): the alert-rules test checks and unit-tests ops/prometheus.
if ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[test] installing promtool (the prometheus package) with apt-get (one-time)" >&2
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus; } >/dev/null
  else
    echo "[test] promtool is missing (sudo apt-get install -y prometheus); the alert-rules test will fail" >&2
  fi
fi

started=()
status=0
cleanup() {
  for service in ${started[@]+"${started[@]}"}; do "$infra" stop "$service" || true; done
}
trap cleanup EXIT

for service in kafka postgres; do
  if ! "$infra" status "$service" >/dev/null 2>&1; then
    "$infra" start "$service"
    started+=("$service")
  fi
done
eval "$("$infra" env)"
node scripts/kafka/warm-up.mjs

mkdir -p .cache
rm -f .cache/jest-results*.json
if [ "$#" -gt 0 ]; then
  # A chosen part of the suite: one jest run, as asked.
  npx jest --json --outputFile=.cache/jest-results.json "$@" || status=$?
else
  # The whole suite in three runs. Unit and integration tests, each on its own topics and
  # database, run two files at once; so do the end-to-end tests that start a system of their own
  # on the shared broker and database. Those that start, stop or kill brokers and databases (the
  # fault scenarios, the cluster, `npm start`, local-infra.sh itself) run one at a time, last.
  npx jest --selectProjects unit int --maxWorkers=2 \
    --json --outputFile=.cache/jest-results-1.json || status=$?
  exclusive=(test/faults/fault-scenarios.e2e.spec.ts test/e2e/kafka-cluster.e2e.spec.ts
    test/e2e/npm-start.e2e.spec.ts test/e2e/local-infra.e2e.spec.ts)
  mapfile -t shared < <(find test -name '*.e2e.spec.ts' | sort | grep -v -x -F "${exclusive[@]/#/-e}")
  npx jest --selectProjects e2e --maxWorkers=2 --runTestsByPath "${shared[@]}" \
    --json --outputFile=.cache/jest-results-2.json || status=$?
  npx jest --selectProjects e2e --maxWorkers=1 --runTestsByPath "${exclusive[@]}" \
    --json --outputFile=.cache/jest-results-3.json || status=$?
fi

# One closing line any CI reads: "tests: N passed, N failed". A run that wrote no results (jest
# itself failed) fails the suite whatever the other run says.
if [ "$#" -eq 0 ]; then
  for results in .cache/jest-results-{1,2,3}.json; do
    [ -f "$results" ] || { echo "[test] a jest run wrote no $results" >&2; status=1; }
  done
fi
if compgen -G ".cache/jest-results*.json" >/dev/null; then
  node -e '
    const runs = process.argv.slice(1).map((file) => require(file));
    const sum = (key) => runs.reduce((n, r) => n + r[key], 0);
    console.log(`tests: ${sum("numPassedTests")} passed, ${sum("numFailedTests") + sum("numRuntimeErrorTestSuites")} failed, ${sum("numPendingTests")} skipped`);
    if (sum("numTotalTests") === 0) { console.error("[test] no tests ran"); process.exit(1); }
  ' "$PWD"/.cache/jest-results*.json || status=1
else
  status=1
fi

if [ "$status" -ne 0 ]; then
  echo "[test] failed; infrastructure logs follow" >&2
  "$infra" logs >&2 || true
fi
exit "$status"
