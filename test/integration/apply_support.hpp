#pragma once
// The immediate apply path wired to a real target, for integration tests: dialect, pool, schema
// cache, applier, plus an admin session for setup and checks.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "molt/common/conn_url.hpp"
#include "molt/common/metrics.hpp"
#include "molt/proto/crdb_types.hpp"
#include "molt/proto/decoder.hpp"
#include "molt/proto/encoder.hpp"
#include "molt/replicator/dialect/mysql.hpp"
#include "molt/replicator/dialect/postgres.hpp"
#include "molt/replicator/target/immediate_applier.hpp"
#include "molt/test/json_builders.hpp"
#include "molt/test/servers.hpp"

namespace molt::replicator::testing {

inline result<std::unique_ptr<target_session>> open_session(const conn_url& url) {
    return url.dialect() == dialect::postgres ? postgres::connect(url, std::chrono::seconds(30))
                                              : mysql::connect(url, std::chrono::seconds(30));
}

struct apply_stack {
    /// `skip_foreign_key_checks`: the pool's sessions run as with --skipForeignKeyChecks;
    /// `pool_url`: they connect with it instead (the admin session keeps the server's URL).
    explicit apply_stack(const std::string& env_var, apply_options options = {},
                         size_t pool_size = 8, bool skip_foreign_key_checks = false,
                         std::optional<conn_url> pool_url = std::nullopt)
        : url(conn_url::parse(test::server_url(env_var.c_str())).value()),
          dialect(url.dialect() == molt::dialect::postgres ? postgres::make_dialect()
                                                           : mysql::make_dialect()),
          pool(
              [&] {
                  session_pool::connect_fn connect = [as = pool_url.value_or(url)] {
                      return open_session(as);
                  };
                  if (!skip_foreign_key_checks) {
                      return connect;
                  }
                  return with_session_setting(
                      std::move(connect), dialect->no_foreign_key_checks_sql(),
                      "--skipForeignKeyChecks", dialect->no_foreign_key_checks_hint());
              }(),
              pool_size),
          schemas(*dialect, pool, std::chrono::seconds(60)),
          applier(*dialect, pool, schemas, metrics, options),
          admin(open_session(url).value()) {
        schema.parts = url.dialect() == molt::dialect::postgres
                           ? std::vector<std::string>{url.database(), "public"}
                           : std::vector<std::string>{url.database()};
    }

    /// Runs SQL statements (separated by "; ") on the admin session; fails the test on error.
    void sql(const std::string& text) {
        size_t start = 0;
        while (start < text.size()) {
            const size_t end = std::min(text.find("; ", start), text.size());
            const std::string statement = text.substr(start, end - start);
            auto done = admin->execute(statement, {});
            if (!done) {
                FAIL(statement << ": " << done.error().message());
            }
            start = end + 2;
        }
    }
    /// The first column of every row.
    std::vector<std::optional<std::string>> column(const std::string& text) {
        auto rows = admin->query(text, {});
        if (!rows) {
            FAIL(text << ": " << rows.error().message());
        }
        std::vector<std::optional<std::string>> out;
        for (auto& r : *rows) {
            out.push_back(r.at(0));
        }
        return out;
    }
    std::optional<std::string> one(const std::string& text) {
        auto values = column(text);
        REQUIRE(values.size() == 1);
        return values[0];
    }
    /// Applies a request body and returns the result.
    result<accept_stats> post(const std::string& body) {
        auto decoded = proto::decode_webhook(body);
        REQUIRE(decoded);
        schemas.invalidate(schema);
        return applier.accept_rows(schema, decoded->rows);
    }

    conn_url url;
    std::unique_ptr<target_dialect> dialect;
    session_pool pool;
    schema_cache schemas;
    metrics::registry metrics;
    immediate_applier applier;
    std::unique_ptr<target_session> admin;
    qualified_name schema;
};

/// A message for `body()`.
struct row {
    std::string topic;
    proto::json key;
    proto::json after;  ///< null: delete
    int64_t wall = 1;
    proto::json before = proto::json::null();  ///< the row before (WITH diff) unless null
};

inline std::string body(const std::vector<row>& rows) {
    std::vector<std::string> encoded;
    for (const row& r : rows) {
        proto::message m;
        m.topic = r.topic;
        m.key = r.key;
        m.after = r.after;
        m.before = r.before;
        m.updated = hlc(1'700'000'000'000'000'000 + r.wall, 0);
        proto::message_options options;
        options.diff = !r.before.is_null();
        encoded.push_back(proto::encode_message(m, options));
    }
    return proto::encode_payload(encoded);
}

/// A TCP listener on 127.0.0.1 that never answers: `accepting` lets the kernel complete the
/// handshake and then never reads or writes; otherwise its one-slot backlog is filled first, so
/// a new connection's SYN is dropped and connect() itself hangs.
class black_hole {
public:
    explicit black_hole(bool accepting) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(fd_, 0) == 0);
        socklen_t len = sizeof addr;
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
        port_ = ntohs(addr.sin_port);
        if (!accepting) {
            // Backlog 0 holds one connection; the second and later SYNs are dropped.
            for (int i = 0; i < 2; ++i) {
                const int filler = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
                REQUIRE(filler >= 0);
                (void)::connect(filler, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
                fillers_.push_back(filler);
            }
        }
    }
    ~black_hole() { close(); }
    black_hole(const black_hole&) = delete;
    black_hole& operator=(const black_hole&) = delete;

    [[nodiscard]] uint16_t port() const noexcept { return port_; }
    /// Closes the listener: every queued connection is reset, so a hung client returns.
    void close() {
        for (const int f : fillers_) {
            ::close(f);
        }
        fillers_.clear();
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }

private:
    int fd_ = -1;
    uint16_t port_ = 0;
    std::vector<int> fillers_;
};

/// Runs `connect` against a black hole and checks that it fails within `bound`; if it is still
/// hanging after `bound` plus a grace, the black hole is closed so the test ends either way.
template <typename Connect>
void check_connect_bounded(black_hole& hole, std::chrono::seconds bound, Connect connect) {
    const auto start = std::chrono::steady_clock::now();
    auto attempt = std::async(std::launch::async, connect);
    const bool in_time =
        attempt.wait_for(bound + std::chrono::seconds(3)) == std::future_status::ready;
    if (!in_time) {
        hole.close();
    }
    auto session = attempt.get();
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    INFO("connect took " << took.count() << " ms; bound " << bound.count() << " s");
    CHECK(in_time);
    REQUIRE_FALSE(session);
    CHECK(session.error().retry() == retry_class::reconnect);
}

inline proto::json pg(std::string_view type, std::optional<std::string_view> text) {
    return proto::value_from_pg_text(proto::column_type_from_name(type), text).value();
}

/// A table split into column families as CockroachDB sends it: topic fam_t.primary carries id
/// and a, fam_t.f2 carries b and c (without the key column, which is in "key" only). The
/// requests in order: one family of key 1 at 10 before the other; key 2 whole at 20 with an
/// update of key 1's f2 alone at 30; key 1 deleted at 40, one family per request; key 2 deleted
/// at 50 and inserted again at 60 in one request.
inline std::vector<std::vector<row>> family_requests() {
    using test::key;
    using test::num;
    using test::obj;
    using test::str;
    return {
        {{"fam_t.f2", key({num(1)}), obj({{"b", str("b1")}, {"c", str("c1")}}), 10}},
        {{"fam_t.primary", key({num(1)}), obj({{"a", str("a1")}, {"id", num(1)}}), 10}},
        {{"fam_t.primary", key({num(2)}), obj({{"a", str("a2")}, {"id", num(2)}}), 20},
         {"fam_t.f2", key({num(2)}), obj({{"b", str("b2")}, {"c", str("c2")}}), 20},
         {"fam_t.f2", key({num(1)}), obj({{"b", str("b1")}, {"c", str("c3")}}), 30}},
        {{"fam_t.primary", key({num(1)}), proto::json::null(), 40}},
        {{"fam_t.f2", key({num(1)}), proto::json::null(), 40},
         {"fam_t.primary", key({num(2)}), proto::json::null(), 50},
         {"fam_t.f2", key({num(2)}), proto::json::null(), 50},
         {"fam_t.primary", key({num(2)}), obj({{"a", str("a6")}, {"id", num(2)}}), 60},
         {"fam_t.f2", key({num(2)}), obj({{"b", str("b6")}, {"c", proto::json::null()}}), 60}},
    };
}
/// The rows of family_requests() up to 30, and at the end ("id:a:b:c").
inline const std::vector<std::string> family_rows_at_30{"1:a1:b1:c3", "2:a2:b2:c2"};
inline const std::vector<std::string> family_rows_at_end{"2:a6:b6:NULL"};

inline void create_family_table(apply_stack& t) {
    t.sql("DROP TABLE IF EXISTS fam_t");
    t.sql(
        "CREATE TABLE fam_t (id BIGINT PRIMARY KEY, a VARCHAR(20), b VARCHAR(20), c "
        "VARCHAR(20))");
}

/// The rows of a query, each as its values joined by ':' (NULL as "NULL").
inline std::vector<std::string> joined_rows(target_session& db, const std::string& sql) {
    auto rows = db.query(sql, {});
    REQUIRE(rows);
    std::vector<std::string> out;
    for (const auto& r : *rows) {
        std::string line;
        for (const auto& v : r) {
            line += (line.empty() ? "" : ":") + v.value_or("NULL");
        }
        out.push_back(line);
    }
    return out;
}

inline std::vector<std::string> family_rows(apply_stack& t) {
    return joined_rows(*t.admin, "SELECT id, a, b, c FROM fam_t ORDER BY id");
}

/// The immediate mode: each request applied as it comes.
inline void column_families_immediate(const std::string& env_var) {
    apply_stack t(env_var);
    create_family_table(t);
    const auto requests = family_requests();
    for (size_t i = 0; i < requests.size(); ++i) {
        auto applied = t.post(body(requests[i]));
        INFO("request " << i);
        if (!applied) {
            FAIL(applied.error().message());
        }
        if (i == 0) {
            CHECK(family_rows(t) == std::vector<std::string>{"1:NULL:b1:c1"});
        }
        if (i == 2) {
            CHECK(family_rows(t) == family_rows_at_30);
        }
    }
    CHECK(family_rows(t) == family_rows_at_end);
    t.sql("DROP TABLE fam_t");
}

}  // namespace molt::replicator::testing
