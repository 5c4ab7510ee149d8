#!/usr/bin/env bash
# The peer of `slipway release`: the same two images built, pushed and checked with the docker
# CLI and shell. Usage: release.sh WORKDIR PLATFORM_TAG AGENT_TAG ROOT_IMAGE cold|warm
set -euo pipefail
dir=$1 platform=$2 agent=$3 root=$4 mode=$5
cd "$dir"
nocache=()
if [ "$mode" = cold ]; then nocache=(--no-cache); fi
staged=.tenant-bundle-deps/workspace-configs-templates/platform-agent
sha=$(jq -r '.templates["platform-agent"].ref' manifest.json 2>/dev/null || sed -n 's/.*"ref": "\([0-9a-f]\{40\}\)".*/\1/p' manifest.json | head -1)
rm -rf "$staged.peer" && mkdir -p "$staged.peer"
git archive --format=tar "$sha" templates/platform-agent | tar -x -C "$staged.peer" --strip-components=2
rm -rf "$staged" && mv "$staged.peer" "$staged"
docker build --pull=false --quiet "${nocache[@]}" -f dockerfiles/Dockerfile.platform --build-arg "ROOT_IMAGE=$root" -t "$platform" . >/dev/null
docker build --pull=false --quiet "${nocache[@]}" -f dockerfiles/Dockerfile.platform-agent --build-arg "BASE_IMAGE=$platform" -t "$agent" . >/dev/null
docker push --quiet "$platform" >/dev/null
docker push --quiet "$agent" >/dev/null
docker run --rm "$platform" test -e /opt/molecule-mcp-server
docker run --rm "$platform" test -d /configs
docker run --rm "$platform" sh -c '[ "$(id -u)" -ne 0 ]'
for t in 'test -f /configs/config.yaml' 'test -n "$(ls -A /configs/prompts)"' 'test -d /configs/mcp_servers' 'test -e /opt/molecule-mcp-server'; do
  docker run --rm --entrypoint /usr/local/bin/identity-fallback.sh "$agent" sh -c "$t"
done
