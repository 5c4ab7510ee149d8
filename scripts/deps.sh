#!/usr/bin/env bash
# Installs the dependencies from the lockfile when they are missing, so `npm test` and
# `npm run demo` are the only two commands on a fresh clone (`npm ci` also builds dist via prepare).
# Already installed (e.g. CI ran `npm ci` first): does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f node_modules/.package-lock.json ] && [ -x node_modules/.bin/tsc ]; then
  exit 0
fi
printf 'deps: node_modules missing; running npm ci\n' >&2
npm ci --no-audit --no-fund
