-- The deduplication key compares byte by byte. Under the database's default collation (often
-- en_US.UTF-8 or C.UTF-8) every index probe and sort of (topic, event_id) went through the C
-- library's locale-aware comparison, which was the largest single cost of applying a batch.
-- Equality is unchanged (the default collations are deterministic); only the order of keys in
-- the index changes, which nothing depends on. Rebuilds the indexes on these columns.
ALTER TABLE events
  ALTER COLUMN topic TYPE text COLLATE "C",
  ALTER COLUMN event_id TYPE text COLLATE "C";
ALTER TABLE applied_messages ALTER COLUMN message_id TYPE text COLLATE "C";
ALTER TABLE receipts ALTER COLUMN message_id TYPE text COLLATE "C";
