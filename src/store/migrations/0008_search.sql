-- Search (issue 16). event_search_text is the text `q` looks in: the source, then every string
-- value of the payload at any depth, one per line (strict mode: `$.**` in lax mode would visit
-- array elements twice). It decides what matches; a cheaper expression of built-in functions
-- holds the trigram index (search-indexes.ts). That index and the payload's containment index are
-- created or dropped at start as SEARCH_INDEX says, since they cost ingest; pg_trgm is here so
-- that switching them on needs no migration.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE FUNCTION event_search_text(payload jsonb, source text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
  SELECT source || coalesce(E'\n' || (
    SELECT string_agg(v #>> '{}', E'\n')
    FROM jsonb_path_query(payload, 'strict $.**') AS v
    WHERE jsonb_typeof(v) = 'string'), '')
$$;
