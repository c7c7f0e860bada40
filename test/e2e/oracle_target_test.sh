#!/usr/bin/env bash
# An Oracle target on a machine where Oracle's ODBC driver is not installed (every machine that
# runs this suite: no Oracle client can be installed from Debian): `replicator start` exits 1
# before listening, names what to install and how to register it, and never prints the password.
# An unset NLS_LANG is set to UTF-8 (said in the log); a set one is kept.
# A driver named with ?odbcDriver= that is not registered is named; URL parameters the Oracle
# transport cannot honour are refused; the consistent mode asks for --stagingConn.
# Usage: oracle_target_test.sh REPLICATOR   (needs no database server)
REPLICATOR=$1
. "$(dirname "$0")/lib.sh"
set -uo pipefail
E2E_FAILURES=0

url='oracle://C%23%23MIGRATION_USER:s3cret@127.0.0.1:1521/ORCLPDB1'
start() { timeout 60 "$REPLICATOR" start --tlsSelfSigned --bindAddr 127.0.0.1:0 "$@" 2>&1; }

echo "--- no Oracle ODBC driver registered"
out=$(unset NLS_LANG; start --immediate --disableAuthentication --targetConn "$url")
status=$?
check "exit 1" "$status" 1
check_contains "says no Oracle driver is registered" "$out" \
    "no Oracle ODBC driver is registered with unixODBC"
check_contains "says how to register one" "$out" "odbc_update_ini.sh"
check_contains "names the target, redacted" "$out" \
    "oracle://C%23%23MIGRATION_USER:xxxxx@127.0.0.1:1521/ORCLPDB1"
check "never prints the password" "$(grep -c s3cret <<<"$out")" 0
check "never listened" "$(grep -c 'Server listening' <<<"$out")" 0
check_contains "NLS_LANG unset: UTF-8 is chosen" "$out" "NLS_LANG was unset"
out=$(NLS_LANG=AMERICAN_AMERICA.AL32UTF8 start --immediate --disableAuthentication \
    --targetConn "$url")
check_contains "NLS_LANG set: kept and logged" "$out" '"NLS_LANG":"AMERICAN_AMERICA.AL32UTF8"'

echo "--- a named driver that is not registered"
out=$(start --immediate --disableAuthentication \
    --targetConn "$url?odbcDriver=Oracle%2019c%20ODBC%20driver")
check "exit 1" "$?" 1
check_contains "names it" "$out" "Oracle 19c ODBC driver\\\" (odbcDriver) is not registered"

echo "--- URL parameters the transport cannot honour"
out=$(start --immediate --disableAuthentication --targetConn "$url?sslmode=require")
check "exit 1" "$?" 1
check_contains "names the parameter" "$out" "unsupported Oracle connection parameter \"sslmode\""

echo "--- the consistent mode stages elsewhere"
out=$(start --targetConn "$url")
check "exit 1" "$?" 1
check_contains "asks for --stagingConn" "$out" "pass --stagingConn"
e2e_finish
