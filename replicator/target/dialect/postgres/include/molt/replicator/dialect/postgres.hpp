#pragma once
// PostgreSQL targets: SQL, value binding, catalog introspection, sessions (SOCI postgresql).
//
//   upsert  INSERT INTO "s"."t" ("id","v") SELECT * FROM unnest(:p1::bigint[],:p2::text[])
//           ON CONFLICT ("id") DO UPDATE SET ("v") = ROW(excluded."v")
//   delete  DELETE FROM "s"."t" WHERE ("id") IN (SELECT * FROM unnest(:p1::bigint[]))
//
// One parameter per column, an array literal of every row's value as text, cast to an array
// of the column's type (format_type): the statement's text does not depend on the row count, so
// a session prepares it once and the server plans it once (target_dialect::binds_columns).
// Statements writing an array column (unnest would flatten it) or a GEOMETRY/GEOGRAPHY (through
// st_geomfromgeojson) take one parameter per value instead:
//   upsert  INSERT INTO "s"."t" ("id","v") VALUES (:p1::bigint,:p2::text),(...) ON CONFLICT ...
//   delete  DELETE FROM "s"."t" WHERE ("id") IN ((:p1::bigint),(...))
// Array columns take PostgreSQL array literals converted from the changefeed's JSON arrays.
// Errors are classified by SQLSTATE (retry_class).

#include <chrono>
#include <memory>
#include <string_view>

#include "molt/common/conn_url.hpp"
#include "molt/replicator/core/target.hpp"

namespace molt::replicator::postgres {

[[nodiscard]] std::unique_ptr<target_dialect> make_dialect();

/// Opens a session; `statement_timeout` bounds each statement (0: none), connecting (clamped
/// to 2..10 s; 10 s when 0) and unacknowledged writes (tcp_user_timeout, `statement_timeout` +
/// 5 s), with TCP keepalives — unless the URL sets connect_timeout, keepalives* or
/// tcp_user_timeout. JSON/JSONB columns take the value's JSON text (proto::json_document).
[[nodiscard]] result<std::unique_ptr<target_session>> connect(
    const conn_url& url, std::chrono::nanoseconds statement_timeout);

/// The retry class of a SQLSTATE.
[[nodiscard]] retry_class classify_sqlstate(std::string_view sqlstate) noexcept;

/// A PostgreSQL array literal ({1,"a b",NULL}) from a JSON array's text.
[[nodiscard]] result<std::string> array_literal(std::string_view json_array);

}  // namespace molt::replicator::postgres
