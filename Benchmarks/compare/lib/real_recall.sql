-- HNSW top-1 against the paraphrase's own question and against an exact scan, per ef_search (pgvector-real-embeddings.sh).
CREATE OR REPLACE FUNCTION ck_real_recall(ef int) RETURNS text AS $$
DECLARE own int := 0; agree int := 0; exact_own int := 0; total int := 0; r record; top int; ex int; t0 timestamptz;
        times double precision[] := '{}';
BEGIN
  EXECUTE format('SET LOCAL hnsw.ef_search = %s', ef);
  FOR r IN SELECT id, target, embedding FROM ckr_queries ORDER BY id LOOP
    t0 := clock_timestamp();
    SELECT id INTO top FROM ckr_real ORDER BY embedding <=> r.embedding LIMIT 1;
    times := times || extract(epoch from clock_timestamp() - t0) * 1000;
    SET LOCAL enable_indexscan = off;
    SELECT id INTO ex FROM ckr_real ORDER BY embedding <=> r.embedding LIMIT 1;
    SET LOCAL enable_indexscan = on;
    total := total + 1;
    IF top = r.target THEN own := own + 1; END IF;
    IF ex = r.target THEN exact_own := exact_own + 1; END IF;
    IF top = ex THEN agree := agree + 1; END IF;
  END LOOP;
  RETURN format('ef %s: own near-duplicate first %s (exact scan: %s), agrees with exact %s, p50 %s ms over %s',
    ef, round(own::numeric / total, 3), round(exact_own::numeric / total, 3), round(agree::numeric / total, 3),
    round((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY t) FROM unnest(times) t)::numeric, 3), total);
END $$ LANGUAGE plpgsql;
