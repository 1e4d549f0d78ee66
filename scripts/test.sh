#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs npm packages, the Kafka broker and
# PostgreSQL when missing, starts whichever of the two is not running, runs unit, integration and
# end-to-end tests (arguments go to jest), and stops what it started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
infra=scripts/local-infra.sh

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
results=.cache/jest-results.json
rm -f "$results"
npx jest --json --outputFile="$results" "$@" || status=$?

# One closing line any CI reads: "tests: N passed, N failed".
if [ -f "$results" ]; then
  node -e '
    const r = require(process.argv[1]);
    console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests + r.numRuntimeErrorTestSuites} failed, ${r.numPendingTests} skipped`);
    if (r.numTotalTests === 0) { console.error("[test] no tests ran"); process.exit(1); }
  ' "$PWD/$results" || status=1
fi

if [ "$status" -ne 0 ]; then
  echo "[test] failed; infrastructure logs follow" >&2
  "$infra" logs >&2 || true
fi
exit "$status"
