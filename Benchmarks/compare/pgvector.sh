#!/usr/bin/env bash
# pgvector at 100,000 × 384: index build time, recall@1 of PGVectorSemanticIndex against exact search on
# near-duplicate queries, and the latency of a search through CacheKit against the same SQL run by pgbench.
# Starts its own PostgreSQL + pgvector (the pgserver wheel, as scripts/test does) on 127.0.0.1:55433.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(cd .. && pwd)
export CACHEKIT_STATE_DIR=${CACHEKIT_STATE_DIR:-"$ROOT/.cache/cachekit-bench"}
export CACHEKIT_TEST_POSTGRES_PORT=${BENCH_POSTGRES_PORT:-55433}
ROWS=${BENCH_ROWS:-100000}
QUERIES=${BENCH_QUERIES:-200}
cd "$ROOT" && source scripts/lib/common.sh && cd Benchmarks
ensure_swift
ensure_requirements benchmarks
trap stop_postgres EXIT
start_postgres
PSQL=("$PG_BIN/psql" "$CACHEKIT_POSTGRES_URL" -X -q -At)
WORK=$(mktemp -d)
swift build -c release --product cachekit-bench >&2
BENCH="$(swift build -c release --show-bin-path)/cachekit-bench"

PREP=$("$BENCH" compare/request-2kb.json --pgvector-prepare "$CACHEKIT_POSTGRES_URL")
SCOPE=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["scope_hex"])' "$PREP")
PART=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["partition_hex"])' "$PREP")
PAYLOAD=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["payload_hex"])' "$PREP")
T=ckbench_vectors_384

log "loading $ROWS random 384-dimension vectors"
"${PSQL[@]}" -c "TRUNCATE $T CASCADE; DELETE FROM ${T}_dedicated;"
for child in $("${PSQL[@]}" -c "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = '$T'::regclass"); do
  "${PSQL[@]}" -c "DROP TABLE $child"
done
"${PSQL[@]}" -c "SELECT setseed(0.42);
  INSERT INTO $T (key, scope_id, partition, embedding, payload, stale_until, tags)
  SELECT sha256(i::text::bytea), decode('$SCOPE', 'hex'), decode('$PART', 'hex'),
         (SELECT array_agg(random()::real - 0.5) FROM generate_series(1, 384) g WHERE i > 0)::vector,
         decode('$PAYLOAD', 'hex'), 9000000000000000, '{}'
  FROM generate_series(1, $ROWS) i;"
# The partition is past dedicatedTableThreshold: PGVectorSemanticIndex.moveLargePartitions() moves it to its own
# table and builds that table's HNSW index (what run() does after a bulk import).
log "moving the partition to its own table and building its HNSW index (m 16, ef_construction 64)"
"${PSQL[@]}" -c "ALTER SYSTEM SET maintenance_work_mem = '2GB'" -c "SELECT pg_reload_conf()" >/dev/null
BUILD_SECONDS=$("$BENCH" compare/request-2kb.json --pgvector-move "$CACHEKIT_POSTGRES_URL" | python3 -c 'import sys; print(round(float(sys.stdin.read()), 1))')
CHILD="${T}_p${PART:0:16}"

# Near-duplicate queries: stored vectors with 2 % noise. Exact answers from a sequential scan.
"${PSQL[@]}" -c "SELECT embedding::text FROM $T ORDER BY key LIMIT $QUERIES" > "$WORK/stored.txt"
python3 - "$WORK" <<'PY'
import json, random, sys
work = sys.argv[1]
random.seed(7)
queries = []
for line in open(f"{work}/stored.txt"):
    v = json.loads(line)
    queries.append([x + random.gauss(0, 0.02 * (sum(y * y for y in v) / len(v)) ** 0.5) for x in v])
json.dump(queries, open(f"{work}/queries.json", "w"))
with open(f"{work}/exact.sql", "w") as f:
    f.write("SET enable_indexscan = off;\n")
    for q in queries:
        f.write("SELECT encode(key, 'hex') FROM ckbench_vectors_384 ORDER BY embedding <=> '%s' LIMIT 1;\n" % json.dumps(q).replace(" ", ""))
first = json.dumps(queries[0]).replace(" ", "")
with open(f"{work}/pgbench.sql", "w") as f:
    f.write("SELECT key, payload, 1 - (embedding <=> '%s'::vector) FROM ONLY CHILD "
            "WHERE scope_id = decode('%s', 'hex') AND partition = decode('%s', 'hex') AND stale_until > 0 "
            "ORDER BY embedding <=> '%s'::vector LIMIT 1;\n" % (first, "SCOPE", "PART", first))
PY
sed -i "s/'SCOPE'/'$SCOPE'/; s/'PART'/'$PART'/; s/ CHILD / $CHILD /" "$WORK/pgbench.sql"
log "exact search for $QUERIES queries"
"${PSQL[@]}" -f "$WORK/exact.sql" > "$WORK/exact.txt"

OURS=$("$BENCH" compare/request-2kb.json --pgvector-search "$CACHEKIT_POSTGRES_URL" "$WORK/queries.json")
# pgbench runs the same statement with the same vector (as a literal; hnsw.ef_search 64 set for the session).
PGOPTIONS="-c hnsw.ef_search=${BENCH_EF_SEARCH:-64}" "$PG_BIN/pgbench" "$CACHEKIT_POSTGRES_URL" -n -c 1 -T 8 -f "$WORK/pgbench.sql" -l --log-prefix="$WORK/pgb" >/dev/null 2>&1
python3 - "$WORK" "$OURS" "$BUILD_SECONDS" "$ROWS" "${BENCH_EF_SEARCH:-64}" <<'PY'
import glob, json, sys
work, ours, build, rows = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
exact = [l.strip() for l in open(f"{work}/exact.txt") if l.strip()]
found = ours["keys"]
hits = sum(1 for a, b in zip(found, exact) if a == b)
lat = sorted(int(l.split()[2]) for f in glob.glob(f"{work}/pgb.[0-9]*") for l in open(f))
raw_p50 = lat[len(lat) // 2] / 1000
print(f"rows: {rows} × 384, HNSW build (m 16, ef_construction 64): {build} s")
print(f"recall@1 at ef_search {sys.argv[5]} on {len(exact)} near-duplicate queries: {hits / len(exact):.3f}")
print(f"search p50: PGVectorSemanticIndex {ours['fixed_p50_ms']:.3f} ms (p95 {ours['fixed_p95_ms']:.3f})   pgbench same SQL {raw_p50:.3f} ms   ratio {ours['fixed_p50_ms'] / raw_p50:.2f}x")
PY
rm -rf "$WORK"
