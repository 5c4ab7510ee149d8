#!/usr/bin/env bash
# The peer of `slipway stage`: what a typical clone-manifest.sh does. For every line
# "<name> <url> <sha>" of LIST: a sequential `git clone`, a checkout of the pin, `rm -rf .git`.
# Usage: clone-manifest.sh LIST DEST
set -euo pipefail
list=$1 dest=$2
mkdir -p "$dest"
while read -r name url sha; do
  git clone --quiet "$url" "$dest/$name"
  git -C "$dest/$name" -c advice.detachedHead=false checkout --quiet "$sha"
  rm -rf "$dest/$name/.git"
done <"$list"
