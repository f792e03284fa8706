#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 cluster on 127.0.0.1 for the test suite and prints its URL.
# initdb refuses to run as root, so the cluster belongs to the `postgres` user.
# Usage: eval "$(scripts/test-postgres.sh [DIR] [PORT])"   → exports TEST_DATABASE_URL
# `eval "$(…)"` ignores the script's exit status, so on any failure the script prints `false` on stdout:
# the eval then fails too (stopping `&& npm test`, or a `set -e` script such as .ci/run).
set -euo pipefail
trap 'rc=$?; if [ "$rc" -ne 0 ]; then echo false; fi' EXIT
DIR=${1:-/tmp/seedops-ci-pg}
PORT=${2:-55432}
P=/usr/lib/postgresql/15/bin
if [ ! -x "$P/initdb" ]; then
  echo "PostgreSQL 15 server binaries not found in $P (apt-get install postgresql-15)" >&2
  exit 1
fi
RUN=(bash -c)
if [ "$(id -u)" = 0 ]; then RUN=(su postgres -s /bin/bash -c); fi
if [ -f "$DIR/postmaster.pid" ] && "${RUN[@]}" "$P/pg_ctl -D $DIR status" >/dev/null 2>&1; then
  echo "export TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$PORT/postgres"
  exit 0
fi
rm -rf "$DIR"
install -d -m 0755 "$(dirname "$DIR")"
if [ "$(id -u)" = 0 ]; then install -d -o postgres -g postgres "$DIR"; else install -d "$DIR"; fi
"${RUN[@]}" "$P/initdb -D $DIR -U postgres --auth=trust -E UTF8 --locale=C.UTF-8" >"$DIR.initdb.log" 2>&1 || { cat "$DIR.initdb.log" >&2; echo "initdb failed" >&2; exit 1; }
"${RUN[@]}" "$P/pg_ctl -D $DIR -o '-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off' -l $DIR/log -w start" >&2 || { cat "$DIR/log" >&2; echo "PostgreSQL failed to start" >&2; exit 1; }
echo "export TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$PORT/postgres"
