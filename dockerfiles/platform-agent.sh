#!/bin/sh
# The reference platform-agent main process: checks its identity, prints a readiness line and
# keeps running until stopped. A real agent replaces this script; the contract stays the same.
set -eu

CONFIGS_DIR="${CONFIGS_DIR:-/configs}"
config="$CONFIGS_DIR/config.yaml"

if [ ! -s "$config" ]; then
  echo "platform-agent: no identity at $config; not ready" >&2
  exit 78
fi
name=$(sed -n 's/^name:[[:space:]]*//p' "$config" | head -n 1)
prompts=$(ls "$CONFIGS_DIR/prompts" 2>/dev/null | wc -l | tr -d ' ')
echo "platform-agent ready (identity: ${name:-unnamed}, config: $config, prompts: $prompts)"

trap 'echo "platform-agent: stopping"; exit 0' TERM INT
while :; do
  sleep 3600 &
  wait $! || true
done
