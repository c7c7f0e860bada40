#pragma once
// The implementations of sql_client (private to fetch/db).

#include <chrono>
#include <memory>
#include <string_view>

#include "molt/fetch/sql_client.hpp"

namespace molt::fetch {

[[nodiscard]] result<std::unique_ptr<sql_client>> connect_postgres(const conn_url& url,
                                                                   std::string_view what,
                                                                   std::chrono::seconds timeout);
[[nodiscard]] result<std::unique_ptr<sql_client>> connect_mysql(const conn_url& url,
                                                                std::string_view what,
                                                                std::chrono::seconds timeout);
[[nodiscard]] result<std::unique_ptr<sql_client>> connect_oracle(const conn_url& url,
                                                                 std::string_view what,
                                                                 std::chrono::seconds timeout);

}  // namespace molt::fetch
