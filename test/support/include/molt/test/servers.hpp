#pragma once
// Throwaway database servers for integration tests.
//
// test/support/db/with-dbs.sh starts PostgreSQL 15 and MariaDB 10.11 and exports their
// connection strings:
//   MOLT_TEST_PG_URL        postgres://app:app@127.0.0.1:<port>/appdb?sslmode=disable
//   MOLT_TEST_PG_ADMIN_URL  the same server as its superuser
//   MOLT_TEST_MYSQL_URL     mysql://app:app@127.0.0.1:<port>/appdb
//   MOLT_TEST_MYSQL_ADMIN_URL
// When a variable is missing, a test that needs it fails if MOLT_TEST_REQUIRE_SERVERS=1 (set by
// ./test.sh and CI); otherwise it prints why and exits with 77, which CTest reports as skipped.

#include <string>

namespace molt::test {

/// The connection string in environment variable `name`, or fail/skip as described above.
[[nodiscard]] std::string server_url(const char* name);

}  // namespace molt::test
