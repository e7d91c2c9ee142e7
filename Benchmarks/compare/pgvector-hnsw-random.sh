#!/usr/bin/env bash
# HNSW recall@1 and latency by ef_search on one 100,000-row table of random 384-dimension vectors (pgvector's own
# index, no CacheKit code): each of 500 queries is a stored row plus noise at cosine ≈ 0.93 (the shape of ManyTenantsTests),
# timed inside PostgreSQL (PL/pgSQL, plan cached). BENCH_M / BENCH_EF_CONSTRUCTION set the index (16 / 64);
# BENCH_EF_SEARCH the list of ef_search values ("40 64 128 200 300"). Starts its own PostgreSQL + pgvector on
# 127.0.0.1:55435 (shared_buffers 1 GB).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(cd .. && pwd)
export CACHEKIT_STATE_DIR=${CACHEKIT_STATE_DIR:-"$ROOT/.cache/cachekit-bench"}
export CACHEKIT_TEST_POSTGRES_PORT=${BENCH_POSTGRES_PORT:-55435}
cd "$ROOT" && source scripts/lib/common.sh && cd Benchmarks
ensure_requirements benchmarks
trap stop_postgres EXIT
start_postgres
PSQL=("$PG_BIN/psql" "$CACHEKIT_POSTGRES_URL" -X -q -At)
"${PSQL[@]}" -c "ALTER SYSTEM SET shared_buffers = '1GB'" -c "ALTER SYSTEM SET maintenance_work_mem = '1GB'"
pg_as_owner "$PG_BIN/pg_ctl" -D "$CACHEKIT_PG_DATA" -w restart -m fast >/dev/null
"${PSQL[@]}" <<'SQL'
CREATE EXTENSION IF NOT EXISTS vector;
DROP TABLE IF EXISTS ckh_rows; DROP TABLE IF EXISTS ckh_queries;
SELECT setseed(0.42);
-- "WHERE i > 0" makes the subquery correlated, so each row draws its own vector.
CREATE TABLE ckh_rows AS SELECT i AS id,
  (SELECT array_agg(random() * 2 - 1) FROM generate_series(1, 384) WHERE i > 0)::vector(384) AS v
  FROM generate_series(1, 100000) i;
CREATE TABLE ckh_queries AS SELECT id AS target,
  (v + ((SELECT array_agg(random() * 2 - 1) FROM generate_series(1, 384) WHERE id > 0)::vector(384)
        * array_fill(0.4 * sqrt(vector_norm(v) ^ 2 / 128.0), ARRAY[384])::vector(384)))::vector(384) AS q
  FROM ckh_rows WHERE id % 200 = 0;
CREATE OR REPLACE FUNCTION ckh_recall(ef int) RETURNS text AS $$
DECLARE own int := 0; total int := 0; r record; top int; t0 timestamptz; times double precision[] := '{}';
BEGIN
  EXECUTE format('SET LOCAL hnsw.ef_search = %s', ef);
  FOR r IN SELECT target, q FROM ckh_queries ORDER BY target LOOP
    t0 := clock_timestamp();
    SELECT id INTO top FROM ckh_rows ORDER BY v <=> r.q LIMIT 1;
    times := times || extract(epoch from clock_timestamp() - t0) * 1000;
    total := total + 1;
    IF top = r.target THEN own := own + 1; END IF;
  END LOOP;
  RETURN format('ef_search %s: recall@1 %s, p50 %s ms, p90 %s ms', ef, round(own::numeric / total, 3),
    round((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY t) FROM unnest(times) t)::numeric, 3),
    round((SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY t) FROM unnest(times) t)::numeric, 3));
END $$ LANGUAGE plpgsql;
SQL
log "building the HNSW index (m ${BENCH_M:-16}, ef_construction ${BENCH_EF_CONSTRUCTION:-64})"
started=$SECONDS
"${PSQL[@]}" -c "CREATE INDEX ckh_hnsw ON ckh_rows USING hnsw (v vector_cosine_ops) WITH (m = ${BENCH_M:-16}, ef_construction = ${BENCH_EF_CONSTRUCTION:-64})"
log "built in $((SECONDS - started)) s"
for ef in ${BENCH_EF_SEARCH:-40 64 128 200 300}; do "${PSQL[@]}" -c "SELECT ckh_recall($ef)"; done
