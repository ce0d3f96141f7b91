-- Listings that do not grow with the store (issue 16). Every GET /events shape walks an index in
-- (timestamp, id) order and stops after one page: the topic index of 0003 serves a topic, these
-- serve newest-first across all topics, a source across topics, and a source within a topic.
-- Partial like the topic index: payloads retention removed are never listed.
CREATE INDEX events_timestamp_idx ON events ("timestamp" DESC, id DESC)
  WHERE expired_at IS NULL;
CREATE INDEX events_source_timestamp_idx ON events (source, "timestamp" DESC, id DESC)
  WHERE expired_at IS NULL;
CREATE INDEX events_topic_source_timestamp_idx
  ON events (topic, source, "timestamp" DESC, id DESC)
  WHERE expired_at IS NULL;
