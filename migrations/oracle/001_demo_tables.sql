-- Demo MES trace tables (the same tables and columns as migrations/sqlite).
-- Rows are loaded in transaction-time order, so ROWID order is not CID order.
-- CONTAINERID is VARCHAR2: the keyset binds CIDs as strings and compares them byte-wise
-- (NLS_COMP=BINARY); a CHAR key would need blank-padded binds.
CREATE TABLE MES_CONTAINER_HISTORY (
    CONTAINERID     VARCHAR2(40)  NOT NULL,
    TXNDATE         DATE          NOT NULL,
    EVENTNAME       VARCHAR2(40)  NOT NULL,
    SPECNAME        VARCHAR2(40),
    WORKCENTERNAME  VARCHAR2(40),
    EQUIPMENTNAME   VARCHAR2(40),
    QTY             NUMBER,
    QTY2            NUMBER,
    EMPLOYEENAME    VARCHAR2(40),
    COMMENTS        VARCHAR2(400)
);

CREATE TABLE MES_CONTAINER_MATERIALS (
    CONTAINERID      VARCHAR2(40)  NOT NULL,
    TXNDATE          DATE          NOT NULL,
    MATERIALPARTNAME VARCHAR2(40)  NOT NULL,
    MATERIALLOTNAME  VARCHAR2(40)  NOT NULL,
    QTYCONSUMED      NUMBER,
    UOM              VARCHAR2(10),
    WORKCENTERNAME   VARCHAR2(40),
    EQUIPMENTNAME    VARCHAR2(40),
    EMPLOYEENAME     VARCHAR2(40)
);

-- The demo's list of containers, for "N random demo CIDs".
CREATE TABLE TRACE_DEMO_CONTAINERS (
    CONTAINERID VARCHAR2(40) NOT NULL,
    CONSTRAINT TRACE_DEMO_CONTAINERS_PK PRIMARY KEY (CONTAINERID)
);
