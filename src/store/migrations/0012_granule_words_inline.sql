-- The search granules' words are kept in the table's own pages (compressed when long), not moved
-- out to its TOAST table. Moved out (the default for text over 2 kB, and a granule's words are
-- 4-5 kB), they were invisible to the planner: event_granules looked like 800 small rows a
-- million events, so reading it whole (sequentially, decompressing and matching every granule's
-- words: 4-7 s for 10,000,000 events) cost less on paper than asking the trigram index (30-40 ms),
-- and a rare term took seconds. Kept inline, the table's size is what reading it costs.
--
-- The ALTER TYPE to the same type rewrites every row (and rebuilds the words index when
-- SEARCH_INDEX is on), so rows stored before are moved in too; it also resets the storage to the
-- type's, hence SET STORAGE after it in the same statement, before the rewrite.
ALTER TABLE event_granules
  ALTER COLUMN words TYPE text USING words || '',
  ALTER COLUMN words SET STORAGE MAIN;
