#!/usr/bin/env bash
# Fault helper for the PostgreSQL integration tests: `pg-ctl.sh kill` sends SIGKILL to the postmaster that
# scripts/test started; `pg-ctl.sh start` starts it again on the same data directory and port. `kill-replica` and
# `start-replica` do the same to its streaming replica.
set -euo pipefail
# The server outlives this script: it must not inherit the caller's descriptors (a test runner waits for its
# pipes to close before it sees the script exit).
for fd in $(ls /proc/$$/fd); do
  [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null || true
done
exec </dev/null >/dev/null
cd "$(dirname "$0")/../.."
source scripts/lib/common.sh
PG_HOME="$CACHEKIT_STATE_DIR/pgserver-$PGSERVER_VERSION"
PG_BIN="$PG_HOME/pgserver/pginstall/bin"
DATA="$CACHEKIT_STATE_DIR/postgres-data"
RUN="$CACHEKIT_STATE_DIR/postgres-run"
case "${1:-}" in
  kill)
    kill -9 "$(head -1 "$DATA/postmaster.pid")"
    ;;
  start)
    for _ in $(seq 1 50); do
      # Orphaned backends exit once they notice the postmaster is gone; start when they have.
      if pg_as_owner "$PG_BIN/pg_ctl" -D "$DATA" -l "$RUN/postgres.log" -w -t 30 \
        -o "-p $POSTGRES_PORT -c listen_addresses=127.0.0.1 -k $RUN -c fsync=off -c max_connections=200" start >/dev/null 2>&1; then
        exit 0
      fi
      sleep 0.2
    done
    echo "postgres did not restart" >&2
    exit 1
    ;;
  kill-replica)
    kill -9 "$(head -1 "$CACHEKIT_STATE_DIR/postgres-replica-data/postmaster.pid")"
    ;;
  start-replica)
    for _ in $(seq 1 50); do
      if pg_as_owner "$PG_BIN/pg_ctl" -D "$CACHEKIT_STATE_DIR/postgres-replica-data" -l "$RUN/postgres-replica.log" -w -t 30 \
        -o "-p $POSTGRES_REPLICA_PORT -c listen_addresses=127.0.0.1 -k $RUN -c fsync=off -c max_connections=200 -c hot_standby_feedback=on" start >/dev/null 2>&1; then
        exit 0
      fi
      sleep 0.2
    done
    echo "the replica did not restart" >&2
    exit 1
    ;;
  *) echo "usage: pg-ctl.sh kill|start|kill-replica|start-replica" >&2; exit 2 ;;
esac
