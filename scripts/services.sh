#!/usr/bin/env bash
# Starts (or stops) the local servers the tests talk to, installing them where they are absent.
#   PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth, database "test").
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

case "${1:-start}" in
  start) pg_start ;;
  stop) pg_stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
