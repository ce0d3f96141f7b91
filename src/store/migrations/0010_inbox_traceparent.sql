-- Traces across processes on the inbox queue too: the W3C traceparent of the publish span that
-- queued a message, so the worker's apply span can link to it (src/tracing.ts). Null when
-- tracing is off.
ALTER TABLE inbox ADD COLUMN traceparent text;
