#pragma once
// Oracle targets: SQL, value conversion, catalog introspection, error classes, and sessions
// through SOCI's ODBC backend with Oracle's ODBC driver (replicator/README.md, "Oracle").
//
//   upsert  MERGE INTO "OWNER"."T" USING (
//           WITH data ("ID","V") AS (
//           SELECT CAST(? AS NUMBER(10)), ? FROM DUAL
//           )
//           SELECT * FROM data) x ON ("OWNER"."T"."ID" = x."ID")
//           WHEN NOT MATCHED THEN INSERT ("ID","V") VALUES (x."ID", x."V")
//           WHEN MATCHED THEN UPDATE SET "V" = x."V"
//   delete  DELETE FROM "OWNER"."T" WHERE ("ID")IN((CAST(? AS NUMBER(10))))
//
// The statements are written for one row and run with one array per parameter
// (target_session::execute_array): every row of a statement in one execution. Parameters are
// ODBC's ? (SOCI would rewrite :name; tables whose names hold ' or : are left out, with a
// warning). Values are bound as text: numbers go through CAST (sessions set
// NLS_NUMERIC_CHARACTERS), times through TO_DATE, TO_TIMESTAMP and TO_TIMESTAMP_TZ with explicit
// format masks, intervals through TO_DSINTERVAL and TO_YMINTERVAL, bytes through HEXTORAW. Only the
// columns a row carries are written (no per-column "was it sent" flag, unlike the original): rows
// of different column sets go in different statements. Errors are classified by ORA number.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "molt/common/conn_url.hpp"
#include "molt/replicator/core/target.hpp"

namespace molt::replicator::oracle {

[[nodiscard]] std::unique_ptr<target_dialect> make_dialect();

// --- Catalog ---------------------------------------------------------------------------------

/// A column as ALL_TAB_COLS describes it.
struct catalog_column {
    std::string data_type;  ///< "VARCHAR2", "NUMBER", "TIMESTAMP(6) WITH TIME ZONE", ...
    std::optional<long> data_length;
    std::optional<long> data_precision;
    std::optional<long> data_scale;
    std::optional<long> char_length;
    std::string char_used;  ///< "B" (byte), "C" (character), or empty
};

/// The type as written inside CAST(... AS <type>): VARCHAR2(42 CHAR), CHAR(1 BYTE),
/// NVARCHAR2(10), NUMBER(12,2), NUMBER, FLOAT(126), RAW(16), TIMESTAMP(6) WITH TIME ZONE,
/// INTERVAL DAY(2) TO SECOND(6) (as the catalog spells it: no precision appended twice).
[[nodiscard]] std::string type_string(const catalog_column& c);

/// The base type, lower case, without precision: "varchar2", "timestamp with time zone",
/// "interval day to second".
[[nodiscard]] std::string base_type(std::string_view data_type);

/// The introspection queries, in the order introspect() runs them: the owner matched ignoring
/// case (? = the path's schema), the columns of its tables (? = the owner), the foreign keys
/// between them (? ? = the owner twice).
[[nodiscard]] const std::vector<std::string>& introspection_sql();

/// A snapshot from the introspection queries' rows (what introspect() runs, for tests on
/// canned rows): `columns` rows are TABLE_NAME, COLUMN_NAME, DATA_TYPE, DATA_LENGTH,
/// DATA_PRECISION, DATA_SCALE, CHAR_LENGTH, CHAR_USED, ignored ('t': hidden, virtual, or an
/// identity GENERATED ALWAYS: accepted in payloads, never written), primary key POSITION (from
/// 1); `fks` rows are child table, parent table.
[[nodiscard]] result<schema_snapshot> snapshot_from_catalog(const std::string& owner,
                                                            const std::vector<sql_row>& columns,
                                                            const std::vector<sql_row>& fks);

// --- Values ----------------------------------------------------------------------------------

/// A changefeed DATE, TIMESTAMP or TIMESTAMPTZ value, broken down.
struct crdb_time {
    int year = 1;
    int month = 1;
    int day = 1;
    int hour = 0;
    int minute = 0;
    int second = 0;
    int nanos = 0;
    std::optional<int> offset_seconds;  ///< present for a zoned value ("Z" is 0)
};

/// Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SS[.f]" and the same with "Z" or ±HH[:MM[:SS]]
/// (a space instead of 'T' too). "infinity" and anything else are refused with the reason.
[[nodiscard]] result<crdb_time> parse_crdb_time(std::string_view text);

/// Bind text for an Oracle DATE ("YYYY-MM-DD HH24:MI:SS": zoned values in UTC, the fraction
/// dropped), TIMESTAMP ("YYYY-MM-DD HH24:MI:SS.FF9", zoned values as UTC wall time) and
/// TIMESTAMP WITH [LOCAL] TIME ZONE ("... TZH:TZM", +00:00 for zoneless values). Years outside
/// 1..9999 are refused.
[[nodiscard]] result<std::string> date_text(std::string_view crdb);
[[nodiscard]] result<std::string> timestamp_text(std::string_view crdb);
[[nodiscard]] result<std::string> timestamp_tz_text(std::string_view crdb);

/// A changefeed INTERVAL ("1 day 02:03:04.5", "1 year 2 mons", "-00:00:01") as the text
/// TO_DSINTERVAL ("[-]D HH:MM:SS.FFFFFFFFF") or TO_YMINTERVAL ("[-]Y-M") reads; an interval with
/// months for DAY TO SECOND, or with days or time for YEAR TO MONTH, is refused.
[[nodiscard]] result<std::string> interval_ds_text(std::string_view crdb);
[[nodiscard]] result<std::string> interval_ym_text(std::string_view crdb);

/// A JSON number in plain notation: "4E+2" -> "400", "1.5E-3" -> "0.0015"; other text as is.
[[nodiscard]] result<std::string> plain_number(std::string_view number);

/// Hex for HEXTORAW from "\x01ff" bytes or a UUID (dashes removed); refused otherwise.
[[nodiscard]] result<std::string> raw_hex(std::string_view text, bool uuid_allowed);

// --- Errors ----------------------------------------------------------------------------------

/// The first ORA-NNNNN number in a message: molt::odbc_setup::ora_number (molt uses it too).

/// The retry class of an ORA number.
[[nodiscard]] retry_class classify_ora(int number) noexcept;

/// Whether an ORA number is bad data in a row (NOT NULL, too long, precision, invalid number or
/// date, check constraint): what --fatalRowPolicy dlq diverts.
[[nodiscard]] bool ora_row_data_error(int number) noexcept;

// --- Sessions --------------------------------------------------------------------------------

/// The statements run on every new session: UTC, the NLS formats the bind text follows,
/// character length semantics.
[[nodiscard]] const std::vector<std::string>& session_init();

/// Drivers and the connection string: molt/common/odbc_setup.hpp (molt uses them too).

/// Opens a session through the Oracle ODBC driver (session_init() runs first). Writes (the
/// parameter arrays) are cancelled after `apply_timeout` (SQL_ATTR_QUERY_TIMEOUT, whole seconds;
/// 0: none) and retried.
[[nodiscard]] result<std::unique_ptr<target_session>> connect(
    const conn_url& url, std::chrono::nanoseconds apply_timeout);

}  // namespace molt::replicator::oracle
