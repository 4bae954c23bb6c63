-- Every refresh updates its session row and its predecessor token row, none of them in an indexed
-- column. Free space left on each page lets PostgreSQL keep the new row version on the same page
-- (a heap-only tuple update), so the update writes no index entries.
ALTER TABLE "sessions" SET (fillfactor = 80);
ALTER TABLE "refresh_tokens" SET (fillfactor = 70);
