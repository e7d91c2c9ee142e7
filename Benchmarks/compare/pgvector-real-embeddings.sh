#!/usr/bin/env bash
# HNSW recall on real sentence embeddings at one large partition's size: GPTCache's 999 questions among templated
# support questions (BENCH_ROWS in all, default 100,000), embedded with all-MiniLM-L6-v2 by sentence-transformers,
# searched with the 999 paraphrases. Prints, per ef_search, how often the first match is the paraphrase's own
# question, how often an exact scan's is, how often HNSW agrees with the exact scan, and the p50.
# BENCH_M / BENCH_EF_CONSTRUCTION set the index (16 / 64); BENCH_EF_SEARCH the list of ef_search values ("40 64 128").
# Starts its own PostgreSQL + pgvector on 127.0.0.1:55435 (shared_buffers 1 GB); the venv is embedding.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(cd .. && pwd)
export CACHEKIT_STATE_DIR=${CACHEKIT_STATE_DIR:-"$ROOT/.cache/cachekit-bench"}
export CACHEKIT_TEST_POSTGRES_PORT=${BENCH_POSTGRES_PORT:-55435}
cd "$ROOT" && source scripts/lib/common.sh && cd Benchmarks
ensure_requirements benchmarks
MODEL=${CACHEKIT_MODEL_DIR:-$(../scripts/fetch-model)}
VENV="../.cache/cachekit/st-venv"
[ -x "$VENV/bin/python" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q 'torch==2.13.0+cpu' sentence-transformers; }
WORK=$(mktemp -d)
log "embedding ${BENCH_ROWS:-100000} texts and 999 paraphrases (several minutes on 2 cores)"
HF_HUB_OFFLINE=1 "$VENV/bin/python" compare/lib/real_embeddings.py "$WORK" ../data/gptcache/mock-pairs.json "$MODEL" "${BENCH_ROWS:-100000}" >/dev/null
trap stop_postgres EXIT
start_postgres
PSQL=("$PG_BIN/psql" "$CACHEKIT_POSTGRES_URL" -X -q -At)
"${PSQL[@]}" -c "ALTER SYSTEM SET shared_buffers = '1GB'" -c "ALTER SYSTEM SET maintenance_work_mem = '1GB'"
pg_as_owner "$PG_BIN/pg_ctl" -D "$CACHEKIT_PG_DATA" -w restart -m fast >/dev/null
"${PSQL[@]}" -c "CREATE EXTENSION IF NOT EXISTS vector" \
  -c "CREATE TABLE ckr_real (id int PRIMARY KEY, embedding vector(384))" \
  -c "CREATE TABLE ckr_queries (id int PRIMARY KEY, target int, embedding vector(384))" \
  -c "\\copy ckr_real FROM '$WORK/stored.tsv'" -c "\\copy ckr_queries FROM '$WORK/queries.tsv'"
log "building the HNSW index (m ${BENCH_M:-16}, ef_construction ${BENCH_EF_CONSTRUCTION:-64})"
"${PSQL[@]}" -c "CREATE INDEX ckr_real_hnsw ON ckr_real USING hnsw (embedding vector_cosine_ops) WITH (m = ${BENCH_M:-16}, ef_construction = ${BENCH_EF_CONSTRUCTION:-64})" -c "ANALYZE ckr_real"
"${PSQL[@]}" -f compare/lib/real_recall.sql
for ef in ${BENCH_EF_SEARCH:-40 64 128}; do "${PSQL[@]}" -c "SELECT ck_real_recall($ef)"; done
rm -rf "$WORK"
