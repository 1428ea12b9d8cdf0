#!/bin/bash
# gvenzl/oracle-free runs this once, as SYSDBA in the root container, when it creates the
# database, after creating APP_USER (with DB_DEVELOPER_ROLE) in FREEPDB1.
#
# Grants APP_USER what the service and the live test suite need:
#   snapshot mode (TRACE_ORACLE_SNAPSHOT=scn): EXECUTE on DBMS_FLASHBACK (the user owns the
#     demo tables, so it needs no FLASHBACK grant on them);
#   the live suite's plan check: SELECT on V$SQL, V$SQL_PLAN, V$SQL_PLAN_STATISTICS_ALL;
#   its cursor checks: SELECT on V$SQL_SHARED_CURSOR (BIND_MISMATCH), V$OPEN_CURSOR;
#   the live suite's session kill: SELECT on V$SESSION and ALTER SYSTEM. ALTER SYSTEM is
#     far too broad for a production account: it is here for this test database only.
# Then it leaves a marker that compose.yaml's healthcheck waits for, so nothing connects
# before the grants exist.
set -euo pipefail

sqlplus -s / as sysdba <<SQL
WHENEVER SQLERROR EXIT SQL.SQLCODE
ALTER SESSION SET CONTAINER = FREEPDB1;
GRANT EXECUTE ON SYS.DBMS_FLASHBACK TO ${APP_USER};
GRANT SELECT ON SYS.V_\$SQL TO ${APP_USER};
GRANT SELECT ON SYS.V_\$SQL_PLAN TO ${APP_USER};
GRANT SELECT ON SYS.V_\$SQL_PLAN_STATISTICS_ALL TO ${APP_USER};
GRANT SELECT ON SYS.V_\$SQL_SHARED_CURSOR TO ${APP_USER};
GRANT SELECT ON SYS.V_\$OPEN_CURSOR TO ${APP_USER};
GRANT SELECT ON SYS.V_\$SESSION TO ${APP_USER};
GRANT ALTER SYSTEM TO ${APP_USER};
SQL

touch /opt/oracle/oradata/.trace-init-done
