-- Events deleted by retention (RETENTION_DAYS), counted with the other counters of their topic.
-- Retention's own updates use shard -1, apart from the workers' shards.
ALTER TABLE topic_counters ADD COLUMN expired bigint NOT NULL DEFAULT 0;
