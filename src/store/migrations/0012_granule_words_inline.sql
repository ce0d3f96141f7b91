-- Two changes that let a search find its granules through the index, measured on 10,000,000
-- events (80,000 granules; docs/search.md):
--
-- 1. The granules' words are kept in the table's own pages (compressed when long), not moved out
--    to its TOAST table. Moved out (the default for text over 2 kB, and a granule's words are
--    4-5 kB), they were invisible to the planner: event_granules looked like a 6.6 MB table for
--    10,000,000 events, so reading it whole (fetching, decompressing and matching every
--    granule's words: 4-7 s) cost less on paper than asking the trigram index (39 ms), and a
--    rare term took seconds. Kept inline, the table's size is what reading it costs. The ALTER TYPE to the
--    same type rewrites every row, so rows stored before are moved in too; it also resets the
--    storage to the type's, hence SET STORAGE after it in the same statement, before the rewrite.
--
-- 2. The words index (SEARCH_INDEX=on, created at start by store/sql/search-indexes.ts) holds
--    each granule's max_ts and min_ts beside its trigrams (btree_gin), so a search bounded in
--    time takes only the granules of its range from the index. With the words alone, a common
--    word matched every granule of the store, and each was read to check its time: 4.8 s for
--    the granules of the last day. It is dropped here, before the rewrite, and built once, with
--    the times, when the service starts with SEARCH_INDEX=on.
CREATE EXTENSION IF NOT EXISTS btree_gin;
DROP INDEX IF EXISTS event_granules_words_idx;
ALTER TABLE event_granules
  ALTER COLUMN words TYPE text USING words || '',
  ALTER COLUMN words SET STORAGE MAIN;
