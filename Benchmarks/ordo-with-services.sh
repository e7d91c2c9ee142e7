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
ensure_requirements benchmarks
trap stop_services EXIT
export CACHEKIT_MODEL_DIR=${CACHEKIT_MODEL_DIR:-$("$PWD/scripts/fetch-model")}
start_redis
start_postgres
start_release_serve 18098 18099
trap 'kill $SERVE_PIDS 2>/dev/null || true; stop_services' EXIT
export CACHEKIT_BENCH_PROXY=127.0.0.1:18099
cd Benchmarks
swift package --allow-writing-to-package-directory benchmark "$@"
