#!/bin/sh
# molecule-mcp-server: a minimal MCP server speaking JSON-RPC 2.0 over stdio, one message per
# line. Reference implementation for the platform base image; answers initialize, ping,
# tools/list and tools/call (tool "echo"), ignores notifications, rejects other methods.
# POSIX sh + sed only, so it runs on busybox and on debian-slim alike.

field() {
  # $1: JSON text, $2: key; prints the raw value of a string or number field (first match).
  printf '%s\n' "$1" | sed -nE "s/.*\"$2\"[[:space:]]*:[[:space:]]*(\"([^\"\\\\]|\\\\.)*\"|-?[0-9]+).*/\\1/p" | head -n 1
}

reply() {
  printf '{"jsonrpc":"2.0","id":%s,%s}\n' "$1" "$2"
}

while IFS= read -r line || [ -n "$line" ]; do
  [ -n "$line" ] || continue
  method=$(field "$line" method)
  id=$(field "$line" id)
  method=${method#\"}
  method=${method%\"}
  # A message without an id is a notification: never answered.
  [ -n "$id" ] || continue
  case "$method" in
    initialize)
      reply "$id" '"result":{"protocolVersion":"2024-11-05","capabilities":{"tools":{}},"serverInfo":{"name":"molecule-mcp-server","version":"0.1.0"}}'
      ;;
    ping)
      reply "$id" '"result":{}'
      ;;
    tools/list)
      reply "$id" '"result":{"tools":[{"name":"echo","description":"Returns its text argument unchanged.","inputSchema":{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}}]}'
      ;;
    tools/call)
      text=$(field "$line" text)
      [ -n "$text" ] || text='""'
      reply "$id" "\"result\":{\"content\":[{\"type\":\"text\",\"text\":$text}],\"isError\":false}"
      ;;
    *)
      reply "$id" "\"error\":{\"code\":-32601,\"message\":\"method not found: $method\"}"
      ;;
  esac
done
