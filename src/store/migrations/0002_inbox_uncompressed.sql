-- Inbox rows live for milliseconds: compressing them on insert and decompressing them on apply
-- costs CPU and saves nothing worth having.
ALTER TABLE inbox ALTER COLUMN events SET STORAGE EXTERNAL;
