#!/usr/bin/env bash
# Starts (or stops) the local servers the tests talk to, installing them where they are absent.
#   PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth, database "test").
#   DynamoDB Local on 127.0.0.1:8000 (Amazon's jar, shipped inside an npm package; needs Java 17).
# The libSQL suite needs no server: local files and :memory: are embedded, and the remote (Hrana)
# stand-in is started by the tests themselves.
set -euo pipefail

PG_PORT=5432

pg_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -1; }

pg_start() {
  if pg_isready -h 127.0.0.1 -p "$PG_PORT" -q 2>/dev/null; then
    echo "services: PostgreSQL is running"
  else
    if [ -z "$(pg_version)" ]; then
      echo "services: installing PostgreSQL"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
      # A fresh cluster asks for passwords over TCP; the tests connect as postgres without one.
      hba="/etc/postgresql/$(pg_version)/main/pg_hba.conf"
      sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
    fi
    echo "services: starting PostgreSQL $(pg_version)"
    pg_ctlcluster --skip-systemctl-redirect "$(pg_version)" main start
    for _ in $(seq 1 60); do
      pg_isready -h 127.0.0.1 -p "$PG_PORT" -q && break
      sleep 0.5
    done
    pg_isready -h 127.0.0.1 -p "$PG_PORT"
  fi
  if ! psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
    createdb -h 127.0.0.1 -p "$PG_PORT" -U postgres test
  fi
}

pg_stop() {
  if [ -n "$(pg_version)" ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(pg_version)" main stop || true
  fi
}

DYNAMODB_PORT=8000
DYNAMODB_PKG=amplify-dynamodb-simulator@2.9.30
DYNAMODB_DIR="$(cd "$(dirname "$0")/.." && pwd)/.services/dynamodb"

dynamodb_up() { curl -s -o /dev/null "http://127.0.0.1:$DYNAMODB_PORT/"; }

dynamodb_start() {
  # The jar and Java are made present even when a server already answers: the fault tests start
  # DynamoDB Local instances of their own from this checkout's copy.
  local emulator="$DYNAMODB_DIR/package/emulator"
  if [ ! -f "$emulator/DynamoDBLocal.jar" ]; then
    echo "services: fetching DynamoDB Local ($DYNAMODB_PKG)"
    mkdir -p "$DYNAMODB_DIR"
    (cd "$DYNAMODB_DIR" && npm pack --silent "$DYNAMODB_PKG" >/dev/null \
      && tar xzf amplify-dynamodb-simulator-*.tgz package/emulator && rm -f amplify-dynamodb-simulator-*.tgz)
  fi
  if ! command -v java >/dev/null; then
    echo "services: installing Java for DynamoDB Local"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  fi
  if dynamodb_up; then
    echo "services: DynamoDB Local is running"
    return
  fi
  echo "services: starting DynamoDB Local on port $DYNAMODB_PORT"
  # java itself is the background job, so the pid file names the server and `stop` can end it.
  # Started from its own directory: DynamoDB Local writes dynamodb-local-metadata.json where it runs.
  cd "$DYNAMODB_DIR"
  nohup java -Djava.library.path="$emulator/DynamoDBLocal_lib" -jar "$emulator/DynamoDBLocal.jar" \
    -inMemory -sharedDb -disableTelemetry -port "$DYNAMODB_PORT" >"$DYNAMODB_DIR/server.log" 2>&1 &
  echo $! >"$DYNAMODB_DIR/server.pid"
  cd - >/dev/null
  for _ in $(seq 1 120); do
    dynamodb_up && return
    sleep 0.25
  done
  echo "services: DynamoDB Local did not answer; log follows" >&2
  cat "$DYNAMODB_DIR/server.log" >&2
  exit 1
}

dynamodb_stop() {
  if [ -f "$DYNAMODB_DIR/server.pid" ]; then
    kill "$(cat "$DYNAMODB_DIR/server.pid")" 2>/dev/null || true
    rm -f "$DYNAMODB_DIR/server.pid"
  fi
}

case "${1:-start}" in
  start) pg_start; dynamodb_start ;;
  stop) pg_stop; dynamodb_stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
