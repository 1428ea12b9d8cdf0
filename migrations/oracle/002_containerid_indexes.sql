-- The keyset access path. A non-unique B-tree index stores its entries sorted by
-- (CONTAINERID, ROWID), so a page query's IN-list seeks each remaining CID and
-- ORDER BY CONTAINERID, ROWID can be read off the index without a sort
-- (tests/oracle/test_plan.py checks the plan on a live database).
CREATE INDEX MES_CONTAINER_HISTORY_CID ON MES_CONTAINER_HISTORY (CONTAINERID);
CREATE INDEX MES_CONTAINER_MATERIALS_CID ON MES_CONTAINER_MATERIALS (CONTAINERID);
