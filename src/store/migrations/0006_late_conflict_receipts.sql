-- A duplicate compared with its stored copy only after the apply (its copy was committed by a
-- concurrent transaction) can turn out to be a conflict. Its receipt, written at apply time,
-- said "duplicate"; the message id and the event's 1-based position let the settling correct it.
-- Checks queued before this migration have neither and leave their receipts as they were.
ALTER TABLE pending_conflict_checks
  ADD COLUMN message_id text COLLATE "C",
  ADD COLUMN position integer;
