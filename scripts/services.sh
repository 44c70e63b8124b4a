#!/usr/bin/env bash
# Starts (or stops) the local servers the tests talk to. The libSQL suite needs none: local files
# and :memory: are embedded, and the remote (Hrana) stand-in is started by the tests themselves.
# Backends that need a server (PostgreSQL, DynamoDB Local, ...) add their start step here.
set -euo pipefail
case "${1:-start}" in
  start) echo "services: nothing to start for the embedded libSQL backend" ;;
  stop) echo "services: nothing to stop" ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
