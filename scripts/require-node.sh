#!/usr/bin/env bash
# Sourced by scripts/test.sh and scripts/run-local.sh: stops with a message naming the version
# needed when this machine's Node.js is older than the lines the project supports (the maintained
# LTS lines 22 and 24; undici 8 needs 22.19). Keep in step with package.json "engines".
require_node() {
  local who=$1 found major minor
  local hint="install Node.js 24 (or 22.19+), or run this command as \`npx -y -p node@24 npm ${2:-test}\` (the npm registry's node package brings the runtime)"
  if ! found=$(node -p 'process.versions.node' 2>/dev/null); then
    printf '[%s] Node.js not found: cashflow-refresh needs Node.js 22.19 or newer (24 recommended); %s\n' "$who" "$hint" >&2
    exit 1
  fi
  if ! [[ $found =~ ^([0-9]+)\.([0-9]+)\. ]]; then
    printf '[%s] cannot tell the version of this Node.js (it says "%s"): cashflow-refresh needs Node.js 22.19 or newer (24 recommended); %s\n' "$who" "$found" "$hint" >&2
    exit 1
  fi
  major=${BASH_REMATCH[1]}
  minor=${BASH_REMATCH[2]}
  if [ "$major" -lt 22 ] || { [ "$major" -eq 22 ] && [ "$minor" -lt 19 ]; }; then
    printf '[%s] Node.js %s is too old: cashflow-refresh needs Node.js 22.19 or newer (24 recommended); %s\n' "$who" "$found" "$hint" >&2
    exit 1
  fi
}
