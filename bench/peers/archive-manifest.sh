#!/usr/bin/env bash
# The cheapest peer of `slipway stage`: `git archive <sha> | tar -x` for every line
# "<name> <url> <sha>" of LIST, one after the other. A local repository (file://) is archived in
# place; over http, where git-http-backend serves no upload-archive, the pin is fetched first
# with a shallow fetch into a scratch bare repository.
# Usage: archive-manifest.sh LIST DEST
set -euo pipefail
list=$1 dest=$2
mkdir -p "$dest"
while read -r name url sha; do
  mkdir -p "$dest/$name"
  case "$url" in
    file://*)
      git -C "${url#file://}" archive --format=tar "$sha" | tar -x -C "$dest/$name"
      ;;
    *)
      scratch=$(mktemp -d "${TMPDIR:-/tmp}/slipway-bench-archive-XXXXXX")
      git init --quiet --bare "$scratch"
      git -C "$scratch" fetch --quiet --no-tags --depth 1 "$url" "$sha"
      git -C "$scratch" archive --format=tar "$sha" | tar -x -C "$dest/$name"
      rm -rf "$scratch"
      ;;
  esac
done <"$list"
