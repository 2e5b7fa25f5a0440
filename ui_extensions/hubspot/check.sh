#!/usr/bin/env bash
# The HubSpot project's checks, independent of the Makefile: the offline project check on
# HubSpot's own parser, then the card's vitest suite. Installs exact versions from
# package-lock.json on first use (npm ci); `--no-install` fails instead when node_modules is missing.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules ]; then
  if [ "${1:-}" = "--no-install" ]; then
    echo "node_modules missing: run npm ci in $(pwd)" >&2
    exit 1
  fi
  npm ci --no-audit --no-fund --loglevel=error 2>&1 | grep -v 'Unknown user config' || true
fi
node scripts/check-project.mjs .
npx --no-install vitest run
