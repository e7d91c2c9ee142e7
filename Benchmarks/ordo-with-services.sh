#!/usr/bin/env bash
# The ordo-one benchmarks with every service they can use: this run's Redis and PostgreSQL (scripts/lib/common.sh,
# the test ports), the local embedding model, and a release `cachekit serve` in front of the loopback fake upstream
# for the proxy hit. Arguments go to `swift package benchmark` (default: `baseline update`-free plain run).
#
#   ./Benchmarks/ordo-with-services.sh                       run every benchmark, print the table
#   ./Benchmarks/ordo-with-services.sh thresholds check       compare p90s with Benchmarks/Thresholds/
#   ./Benchmarks/ordo-with-services.sh --filter 'L2.*'        one group
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_swift
trap stop_services EXIT
export CACHEKIT_MODEL_DIR=${CACHEKIT_MODEL_DIR:-$("$PWD/scripts/fetch-model")}
start_redis
start_postgres
swift build -c release --product cachekit >&2
BIN="$(swift build -c release --show-bin-path)/cachekit"
python3 scripts/lib/fake-openai.py 18098 >/dev/null 2>&1 &
FAKE=$!
"$BIN" serve --port 18099 --upstream http://127.0.0.1:18098/v1 --log-level error >/dev/null 2>&1 &
SERVE=$!
trap 'kill $SERVE $FAKE 2>/dev/null || true; stop_services' EXIT
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18099/healthz >/dev/null && break; sleep 0.1; done
export CACHEKIT_BENCH_PROXY=127.0.0.1:18099
cd Benchmarks
swift package --allow-writing-to-package-directory benchmark "$@"
