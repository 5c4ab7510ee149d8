#!/bin/sh
# identity-fallback.sh: the platform-agent entrypoint. Installs the agent's identity into
# $CONFIGS_DIR from the template baked into the image when $CONFIGS_DIR/config.yaml is missing,
# and refuses to start (exit 78, EX_CONFIG) when it cannot: an agent without its identity must
# never come up and report ready. Then runs the agent's main process.
set -eu

CONFIGS_DIR="${CONFIGS_DIR:-/configs}"
TEMPLATE_DIR="${PLATFORM_AGENT_TEMPLATE:-/opt/platform-agent/template}"

fail() {
  echo "identity-fallback: $*; refusing to start" >&2
  exit 78
}

if [ ! -f "$CONFIGS_DIR/config.yaml" ]; then
  [ -s "$TEMPLATE_DIR/config.yaml" ] ||
    fail "$CONFIGS_DIR/config.yaml is missing and there is no baked template at $TEMPLATE_DIR"
  [ -d "$CONFIGS_DIR" ] || mkdir -p "$CONFIGS_DIR" 2>/dev/null ||
    fail "cannot create $CONFIGS_DIR as uid $(id -u)"
  [ -w "$CONFIGS_DIR" ] || fail "$CONFIGS_DIR is not writable by uid $(id -u)"
  cp -R "$TEMPLATE_DIR/." "$CONFIGS_DIR/" 2>/dev/null ||
    fail "copying the identity from $TEMPLATE_DIR into $CONFIGS_DIR failed"
  [ -s "$CONFIGS_DIR/config.yaml" ] || fail "$CONFIGS_DIR/config.yaml is empty after installing the identity"
  echo "identity-fallback: installed the identity from $TEMPLATE_DIR into $CONFIGS_DIR" >&2
elif [ ! -s "$CONFIGS_DIR/config.yaml" ]; then
  fail "$CONFIGS_DIR/config.yaml exists but is empty"
fi

[ "$#" -gt 0 ] || fail "no command given to run after installing the identity"
exec "$@"
