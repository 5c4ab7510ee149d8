#!/usr/bin/env bash
# The bench's peer tools: Debian's skopeo, GNU time and jq, installed with apt-get when missing
# (as root), like scripts/services.sh does for the services. Run by `npm run bench` (prebench).
set -euo pipefail
log() { printf 'bench deps: %s\n' "$*" >&2; }
missing=()
command -v skopeo >/dev/null || missing+=(skopeo)
[ -x /usr/bin/time ] || missing+=(time)
command -v jq >/dev/null || missing+=(jq)
command -v git >/dev/null || missing+=(git)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  log "missing ${missing[*]}; install them (as root: apt-get install ${missing[*]})"
  exit 1
fi
logfile=$(mktemp "${TMPDIR:-/tmp}/slipway-bench-apt-XXXXXX.log")
log "installing ${missing[*]} (log: $logfile)"
apt-get update -qq >"$logfile" 2>&1 || { log "apt-get update failed (see $logfile)"; exit 1; }
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$logfile" 2>&1 \
  || { log "apt-get install ${missing[*]} failed (see $logfile)"; exit 1; }
rm -f "$logfile"
