// `crdb-emulator serve` against the test PostgreSQL: clients (libpq, SOCI's extended protocol)
// through the stand-in, and changefeeds delivered to an HTTPS receiver that requires a client
// certificate, checked message by message against what the SQL did.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <libpq-fe.h>
#include <openssl/ssl.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>

#include "molt/common/base64.hpp"
#include "molt/common/conn_url.hpp"
#include "molt/common/percent.hpp"
#include "molt/emulator/capture.hpp"
#include "molt/emulator/cluster.hpp"
#include "molt/emulator/pg_proxy.hpp"
#include "molt/proto/json.hpp"
#include "molt/test/servers.hpp"

using namespace molt;
using namespace molt::emulator;
using namespace std::chrono_literals;

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// A CA, a server certificate for localhost and a client certificate, made with openssl.
struct certificates {
    std::string dir;
    certificates() {
        char templ[] = "/tmp/crdb-serve-test-XXXXXX";
        dir = ::mkdtemp(templ);
        const std::string script = fmt::format(
            "(cd {} && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days "
            "2 "
            "-subj '/CN=test CA' && openssl req -newkey rsa:2048 -nodes -keyout server.key -out "
            "server.csr -subj '/CN=localhost' && printf 'subjectAltName=DNS:localhost' > san.ext "
            "&& openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out "
            "server.crt -days 2 -extfile san.ext && openssl req -newkey rsa:2048 -nodes -keyout "
            "client.key -out client.csr -subj '/CN=changefeed' && openssl x509 -req -in "
            "client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2)",
            dir);
        REQUIRE(std::system((script + " >/dev/null 2>&1").c_str()) == 0);
    }
    ~certificates() { (void)std::system(("rm -rf " + dir).c_str()); }
    [[nodiscard]] std::string file(const char* name) const { return dir + "/" + name; }
    // The sink query parameter form: standard base64, URL-encoded.
    [[nodiscard]] std::string param(const char* name) const {
        return percent_encode(base64_encode(read_file(file(name))));
    }
};

// An HTTPS/1.1 receiver that requires a client certificate from the test CA and records every
// request with the status it answered.
class mtls_receiver {
public:
    struct request {
        std::string method, target, content_type, user_agent, authorization, body;
        int status = 0;
        // Positions on one event counter: when the request arrived, when its answer was sent.
        uint64_t arrived = 0, answered = 0;
    };

    explicit mtls_receiver(const certificates& certs) {
        // A changefeed that pauses, restarts or is cancelled closes connections it is waiting
        // on: answering one must fail with EPIPE, not kill the test (OpenSSL's socket writes
        // do not pass MSG_NOSIGNAL).
        std::signal(SIGPIPE, SIG_IGN);
        ctx_ = SSL_CTX_new(TLS_server_method());
        REQUIRE(SSL_CTX_use_certificate_chain_file(ctx_, certs.file("server.crt").c_str()) == 1);
        REQUIRE(SSL_CTX_use_PrivateKey_file(ctx_, certs.file("server.key").c_str(),
                                            SSL_FILETYPE_PEM) == 1);
        REQUIRE(SSL_CTX_load_verify_locations(ctx_, certs.file("ca.crt").c_str(), nullptr) == 1);
        SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
        listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(listener_, 64) == 0);
        socklen_t len = sizeof addr;
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        acceptor_ = std::thread([this] { accept_loop(); });
    }
    ~mtls_receiver() {
        stopping_ = true;
        acceptor_.join();
        ::close(listener_);
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            for (const int fd : fds_) {
                ::shutdown(fd, SHUT_RDWR);
            }
        }
        for (std::thread& t : threads_) {
            t.join();
        }
        SSL_CTX_free(ctx_);
    }
    [[nodiscard]] uint16_t port() const { return port_; }
    void answer(int status, std::string body) {
        const std::lock_guard<std::mutex> lock(mutex_);
        status_ = status;
        answer_body_ = std::move(body);
    }
    /// Row requests are answered this much later (a slow receiver).
    void delay_rows(std::chrono::milliseconds d) { delay_ = d; }
    [[nodiscard]] std::vector<request> requests() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        return requests_;
    }
    [[nodiscard]] int handshake_failures() const { return handshake_failures_; }

private:
    void accept_loop() {
        while (!stopping_) {
            pollfd p{listener_, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) {
                continue;
            }
            const int fd = ::accept(listener_, nullptr, nullptr);
            const std::lock_guard<std::mutex> lock(mutex_);
            fds_.push_back(fd);
            threads_.emplace_back([this, fd] { serve(fd); });
        }
    }
    void serve(int fd) {
        SSL* ssl = SSL_new(ctx_);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) != 1) {
            ++handshake_failures_;
            SSL_free(ssl);
            return;
        }
        std::string in;
        char buf[16384];
        for (;;) {
            size_t head_end;
            while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
                const int n = SSL_read(ssl, buf, sizeof buf);
                if (n <= 0) {
                    SSL_free(ssl);
                    return;
                }
                in.append(buf, static_cast<size_t>(n));
            }
            request r;
            std::istringstream head(in.substr(0, head_end));
            std::string line;
            std::getline(head, line);
            std::istringstream first(line);
            first >> r.method >> r.target;
            size_t length = 0;
            while (std::getline(head, line)) {
                if (!line.empty() && line.back() == '\r') {
                    line.pop_back();
                }
                const size_t colon = line.find(':');
                std::string name = line.substr(0, colon);
                std::transform(name.begin(), name.end(), name.begin(), ::tolower);
                const std::string value = colon == std::string::npos
                                              ? ""
                                              : line.substr(line.find_first_not_of(' ', colon + 1));
                if (name == "content-length") {
                    length = std::stoul(value);
                } else if (name == "content-type") {
                    r.content_type = value;
                } else if (name == "user-agent") {
                    r.user_agent = value;
                } else if (name == "authorization") {
                    r.authorization = value;
                }
            }
            in.erase(0, head_end + 4);
            while (in.size() < length) {
                const int n = SSL_read(ssl, buf, sizeof buf);
                if (n <= 0) {
                    SSL_free(ssl);
                    return;
                }
                in.append(buf, static_cast<size_t>(n));
            }
            r.body = in.substr(0, length);
            in.erase(0, length);
            const bool rows = r.body.find("\"payload\"") != std::string::npos;
            std::string reply;
            size_t index = 0;
            {
                const std::lock_guard<std::mutex> lock(mutex_);
                r.status = status_;
                r.arrived = ++events_;
                reply = fmt::format(
                    "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: "
                    "{}\r\n\r\n{}",
                    status_, status_ == 200 ? "OK" : "Bad Request", answer_body_.size(),
                    answer_body_);
                index = requests_.size();
                requests_.push_back(std::move(r));
            }
            if (rows) {
                std::this_thread::sleep_for(delay_.load());
            }
            {
                // Counted before the answer leaves: the sender cannot act on it earlier.
                const std::lock_guard<std::mutex> lock(mutex_);
                requests_[index].answered = ++events_;
            }
            if (SSL_write(ssl, reply.data(), static_cast<int>(reply.size())) <= 0) {
                SSL_free(ssl);
                return;
            }
        }
    }

    SSL_CTX* ctx_ = nullptr;
    int listener_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    std::atomic<int> handshake_failures_{0};
    std::thread acceptor_;
    mutable std::mutex mutex_;
    std::vector<int> fds_;
    std::vector<std::thread> threads_;
    std::vector<request> requests_;
    int status_ = 200;
    std::string answer_body_;
    uint64_t events_ = 0;
    std::atomic<std::chrono::milliseconds> delay_{std::chrono::milliseconds(0)};
};

// The stand-in, in this process, in front of the test PostgreSQL.
struct stand_in {
    static cluster_options options(const conn_url& backend, std::chrono::nanoseconds gc_ttl) {
        cluster_options o;
        o.backend = backend;
        o.gc_ttl = gc_ttl;
        return o;
    }

    conn_url backend = conn_url::parse(test::server_url("MOLT_TEST_PG_URL")).value();
    cluster c;
    std::unique_ptr<pg_proxy> proxy;

    explicit stand_in(std::chrono::nanoseconds gc_ttl = std::chrono::hours(4))
        : c(options(backend, gc_ttl)) {
        auto started = c.start();
        INFO((started ? "" : started.error().message()));
        REQUIRE(started);
        proxy_options o;
        o.listen_port = 0;
        o.backend_host = backend.host();
        o.backend_port = backend.port_or_default();
        proxy = std::make_unique<pg_proxy>(o, c);
        REQUIRE(proxy->start());
    }
    ~stand_in() {
        proxy->stop();
        c.stop();
    }
    [[nodiscard]] std::string conninfo() const {
        return fmt::format("host=127.0.0.1 port={} dbname={} user={} password={} sslmode=disable",
                           proxy->port(), backend.database(), backend.user(), backend.password());
    }
};

// A libpq connection through the stand-in.
struct client {
    PGconn* conn;
    explicit client(const stand_in& s) : conn(PQconnectdb(s.conninfo().c_str())) {
        INFO(PQerrorMessage(conn));
        REQUIRE(PQstatus(conn) == CONNECTION_OK);
    }
    ~client() { PQfinish(conn); }
    // Rows of the last statement as text; fails the test on an error.
    std::vector<std::vector<std::string>> query(const std::string& sql) {
        PGresult* r = PQexec(conn, sql.c_str());
        const ExecStatusType st = PQresultStatus(r);
        INFO(sql << ": " << PQresultErrorMessage(r));
        REQUIRE((st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK));
        std::vector<std::vector<std::string>> rows;
        for (int i = 0; i < PQntuples(r); ++i) {
            std::vector<std::string> row;
            for (int j = 0; j < PQnfields(r); ++j) {
                row.emplace_back(PQgetvalue(r, i, j));
            }
            rows.push_back(std::move(row));
        }
        PQclear(r);
        return rows;
    }
    // SQLSTATE and message of a statement that must fail.
    std::pair<std::string, std::string> failure(const std::string& sql) {
        PGresult* r = PQexec(conn, sql.c_str());
        INFO(sql);
        REQUIRE(PQresultStatus(r) == PGRES_FATAL_ERROR);
        std::pair<std::string, std::string> out{PQresultErrorField(r, PG_DIAG_SQLSTATE),
                                                PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)};
        PQclear(r);
        return out;
    }
    // The column names of a statement's result.
    std::vector<std::string> columns(const std::string& sql) {
        PGresult* r = PQexec(conn, sql.c_str());
        INFO(sql << ": " << PQresultErrorMessage(r));
        REQUIRE(PQresultStatus(r) == PGRES_TUPLES_OK);
        std::vector<std::string> names;
        for (int j = 0; j < PQnfields(r); ++j) {
            names.emplace_back(PQfname(r, j));
        }
        PQclear(r);
        return names;
    }
    // The value of `column` in SHOW CHANGEFEED JOB <job>.
    std::string job_field(const std::string& job, const std::string& column) {
        PGresult* r = PQexec(conn, ("SHOW CHANGEFEED JOB " + job).c_str());
        INFO(PQresultErrorMessage(r));
        REQUIRE(PQresultStatus(r) == PGRES_TUPLES_OK);
        REQUIRE(PQntuples(r) == 1);
        const int c = PQfnumber(r, column.c_str());
        REQUIRE(c >= 0);
        std::string value = PQgetvalue(r, 0, c);
        PQclear(r);
        return value;
    }
};

// What a changefeed test needs: certificates, the receiver, the stand-in and a client.
struct feed_fixture {
    certificates certs;
    mtls_receiver receiver{certs};
    stand_in s;
    client pq{s};

    // CREATE CHANGEFEED FOR `targets` INTO the receiver at /<db>/public with `query` (ending in
    // '?' or '&') plus the client certificate and the test CA, WITH `options`, after enabling
    // rangefeeds; the job id.
    std::string create(std::string_view targets, std::string_view query, std::string_view options) {
        pq.query("SET CLUSTER SETTING kv.rangefeed.enabled = true");
        return pq
            .query(fmt::format(
                "CREATE CHANGEFEED FOR TABLE {} INTO 'webhook-https://localhost:{}/{}"
                "/public{}ca_cert={}&client_cert={}&client_key={}' WITH {}",
                targets, receiver.port(), s.backend.database(), query, certs.param("ca.crt"),
                certs.param("client.crt"), certs.param("client.key"), options))
            .at(0)
            .at(0);
    }
};

template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout = 15s) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
        if (pred()) {
            return true;
        }
        std::this_thread::sleep_for(20ms);
    }
    return pred();
}

struct received_message {
    std::string text, topic, key, updated;
    size_t request = 0;
};

// Messages of the row requests so far, and the resolved timestamps with their request index.
struct delivery {
    std::vector<received_message> messages;
    std::vector<std::pair<hlc, size_t>> resolved;
};

delivery split(const std::vector<mtls_receiver::request>& requests) {
    delivery d;
    for (size_t i = 0; i < requests.size(); ++i) {
        const auto& r = requests[i];
        auto body = proto::json::parse(r.body);
        REQUIRE(body);
        if (const proto::json* resolved = body->find("resolved")) {
            // {"resolved":"<hlc>"}, compact
            CHECK(r.body == "{\"resolved\":\"" + resolved->text() + "\"}");
            d.resolved.emplace_back(hlc::parse(resolved->text()).value(), i);
            continue;
        }
        const proto::json* payload = body->find("payload");
        REQUIRE(payload != nullptr);
        // The frame is compact; the messages inside are CockroachDB's text form.
        std::string rebuilt = "{\"payload\":[";
        for (size_t m = 0; m < payload->items().size(); ++m) {
            const proto::json& msg = payload->items()[m];
            const std::string text = proto::to_crdb_text(msg);
            rebuilt += (m == 0 ? "" : ",") + text;
            d.messages.push_back({text, msg.find("topic")->text(),
                                  proto::to_crdb_text(*msg.find("key")),
                                  msg.find("updated")->text(), i});
        }
        rebuilt += fmt::format("],\"length\":{}}}", payload->items().size());
        CHECK(r.body == rebuilt);
    }
    return d;
}

}  // namespace

TEST_CASE("serve: libpq and SOCI through the stand-in", "[integration][serve]") {
    stand_in s;
    client pq(s);
    const auto version = pq.query("SELECT version()").at(0).at(0);
    CHECK(version.find("CockroachDB CCL v") == 0);
    CHECK(version.find("emulated") != std::string::npos);
    // Ordinary SQL is PostgreSQL's; CockroachDB's own statements are answered.
    CHECK(pq.query("SELECT current_database()").at(0).at(0) == s.backend.database());
    CHECK(pq.query("SHOW CLUSTER SETTING kv.rangefeed.enabled").at(0).at(0) == "f");
    const auto no_rangefeed =
        pq.failure("CREATE CHANGEFEED FOR TABLE pg_class INTO 'webhook-https://localhost:1/x'");
    CHECK(no_rangefeed.first == "55000");
    CHECK(no_rangefeed.second.find("rangefeeds require the kv.rangefeed.enabled setting") == 0);
    pq.query("SET CLUSTER SETTING kv.rangefeed.enabled = true");
    CHECK(pq.query("SHOW CLUSTER SETTING kv.rangefeed.enabled").at(0).at(0) == "t");
    const auto backup = pq.failure("BACKUP INTO 'nodelocal://1/x'");
    CHECK(backup.first == "0A000");
    CHECK(backup.second.find("unimplemented: backup is not emulated") == 0);
    CHECK(pq.failure("SET CLUSTER SETTING kv.rangefeed.enabled = maybe").second ==
          "could not parse \"maybe\" as type bool: invalid bool value");
    CHECK(pq.failure("SHOW CLUSTER SETTING no.such").first == "42704");
    CHECK(pq.failure("CANCEL JOB 12345").second == "job with ID 12345 does not exist");
    CHECK(pq.failure("CREATE CHANGEFEED FOR TABLE nosuch INTO 'webhook-https://localhost:1/x'")
              .second == "relation \"" + s.backend.database() + ".public.nosuch\" does not exist");
    CHECK(pq.failure("CREATE CHANGEFEED FOR TABLE pg_class INTO 'webhook-http://localhost:1/x'")
              .second == "this sink requires webhook-https");
    pq.query("DROP TABLE IF EXISTS serve_noid");
    pq.query("CREATE TABLE serve_noid (id INT8 PRIMARY KEY)");
    pq.query("ALTER TABLE serve_noid REPLICA IDENTITY NOTHING");
    CHECK(pq.failure("CREATE CHANGEFEED FOR TABLE serve_noid INTO 'webhook-https://localhost:1/x'")
              .second.find("has REPLICA IDENTITY NOTHING") != std::string::npos);
    pq.query("DROP TABLE serve_noid");

    // SOCI's PostgreSQL backend: prepared statements with bound values (extended protocol).
    soci::session sql(soci::postgresql, s.conninfo());
    std::string v;
    sql << "SELECT version()", soci::into(v);
    CHECK(v == version);
    std::string before, after;
    sql << "SELECT cluster_logical_timestamp()::text", soci::into(before);
    sql << "SELECT cluster_logical_timestamp()::text", soci::into(after);
    CHECK(hlc::parse(before).value() < hlc::parse(after).value());
    sql << "DROP TABLE IF EXISTS serve_soci";
    sql << "CREATE TABLE serve_soci (id INT8 PRIMARY KEY, name TEXT)";
    for (int i = 1; i <= 3; ++i) {
        const std::string name = "n" + std::to_string(i);
        sql << "INSERT INTO serve_soci VALUES (:id, :name)", soci::use(i), soci::use(name);
    }
    int count = 0;
    std::string setting;
    soci::statement st = (sql.prepare << "SELECT count(*) FROM serve_soci WHERE id >= :min",
                          soci::use(2), soci::into(count));
    st.execute(true);
    CHECK(count == 2);
    sql << "SHOW CLUSTER SETTING kv.rangefeed.enabled", soci::into(setting);
    CHECK(setting == "t");
    sql << "DROP TABLE serve_soci";
}

TEST_CASE("serve: a schema made earlier in a simple-query batch takes tables later in it",
          "[integration][serve]") {
    using rows = std::vector<std::vector<std::string>>;
    stand_in s;
    client pq(s);
    pq.query("DROP SCHEMA IF EXISTS serve_batch_schema CASCADE");
    // What `psql -c "CREATE SCHEMA ...; CREATE TABLE ..."` sends: one Query message.
    pq.query(
        "CREATE SCHEMA serve_batch_schema; CREATE TABLE serve_batch_schema.employees (id "
        "INT8 PRIMARY KEY); INSERT INTO serve_batch_schema.employees VALUES (1)");
    CHECK(pq.query("SELECT id FROM serve_batch_schema.employees") == rows{{"1"}});
    CHECK(pq.query("SELECT table_schema FROM information_schema.tables WHERE table_name = "
                   "'employees' AND table_schema = 'serve_batch_schema'") ==
          rows{{"serve_batch_schema"}});
    pq.query("DROP SCHEMA serve_batch_schema CASCADE");
}

TEST_CASE("serve: other databases are schemas of the backend's, named as on CockroachDB",
          "[integration][serve]") {
    using rows = std::vector<std::vector<std::string>>;
    using failure = std::pair<std::string, std::string>;
    stand_in s;
    client pq(s);
    const std::string db = "serve_db_1739996035106984000";
    const std::string backend = s.backend.database();
    pq.query("DROP DATABASE IF EXISTS " + db);  // what an interrupted run left
    pq.query("DROP DATABASE IF EXISTS serve_db_direct");
    pq.query("DROP TABLE IF EXISTS serve_db_local");

    // What the replicator's staging runs on CockroachDB, then more of the same.
    pq.query("CREATE DATABASE IF NOT EXISTS \"" + db + "\"");
    CHECK(pq.failure("CREATE DATABASE " + db) ==
          failure{"42P04", "database \"" + db + "\" already exists"});
    pq.query("CREATE DATABASE IF NOT EXISTS " + db);
    pq.query("CREATE SCHEMA IF NOT EXISTS \"" + db + "\".\"public\"");
    pq.query("CREATE SCHEMA " + db + ".\"Staging\"");
    CHECK(pq.failure("CREATE SCHEMA " + db + ".\"Staging\"") ==
          failure{"42P06", "schema \"Staging\" already exists"});
    CHECK(pq.query("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, '" + db +
                   "') ORDER BY 1") ==
          rows{{db + ".Staging"}, {db + ".information_schema"}, {db + ".public"}});

    // Tables and rows, by db.schema.table and db.table, quoted or not; the session's own
    // database keeps its name.
    pq.query("CREATE TABLE IF NOT EXISTS \"" + db +
             "\".\"public\".\"t\" (id INT8 PRIMARY KEY, v TEXT NOT NULL)");
    pq.query("INSERT INTO " + db + ".public.t VALUES (1, 'one'), (2, 'two')");
    pq.query("CREATE TABLE " + db + ".\"Staging\".u (id INT8 PRIMARY KEY REFERENCES " + db +
             ".t (id))");
    pq.query("INSERT INTO " + db + ".\"Staging\".u SELECT id FROM " + db + ".t WHERE id > 1");
    CHECK(pq.query("SELECT t.v, u.id IS NOT NULL FROM " + db + ".public.t AS t LEFT JOIN " + db +
                   ".\"Staging\".u ON u.id = t.id ORDER BY t.id") ==
          rows{{"one", "f"}, {"two", "t"}});
    pq.query("UPDATE " + db + ".t SET v = upper(v) WHERE id IN (SELECT id FROM " + db +
             ".\"Staging\".u)");
    pq.query("CREATE TABLE " + backend + ".public.serve_db_local (id INT8 PRIMARY KEY)");
    pq.query("INSERT INTO " + backend + ".serve_db_local SELECT id FROM " + db + ".t");
    CHECK(pq.query("SELECT count(*) FROM public.serve_db_local") == rows{{"2"}});
    CHECK(pq.query("SELECT table_schema, table_name, table_catalog FROM " + db +
                   ".information_schema.tables WHERE table_schema <> 'information_schema' "
                   "ORDER BY 1, 2") == rows{{"Staging", "u", db}, {"public", "t", db}});

    // The extended protocol with bound values, as the replicator's SOCI sessions send it.
    {
        soci::session sql(soci::postgresql, s.conninfo());
        // SOCI binds by reference: every value lives past its statement.
        const std::string schema = "public", table = "t", three = "three";
        const int id = 3;
        int found = 0;
        sql << "SELECT count(*) FROM \"" + db +
                   "\".information_schema.tables WHERE table_schema = :s AND table_name = :t",
            soci::use(schema), soci::use(table), soci::into(found);
        CHECK(found == 1);
        sql << "INSERT INTO \"" + db + "\".\"public\".\"t\" (id, v) VALUES (:id, :v)",
            soci::use(id), soci::use(three);
        std::string v;
        sql << "SELECT v FROM \"" + db + "\".\"public\".\"t\" WHERE id = :id", soci::use(id),
            soci::into(v);
        CHECK(v == "three");
    }

    // A database made behind the stand-in's back is found too.
    {
        PGconn* direct = PQconnectdb(s.backend.libpq_conninfo().c_str());
        REQUIRE(PQstatus(direct) == CONNECTION_OK);
        PGresult* r = PQexec(direct,
                             "CREATE SCHEMA \"serve_db_direct.public\"; CREATE TABLE "
                             "\"serve_db_direct.public\".d (x INT8); INSERT INTO "
                             "\"serve_db_direct.public\".d VALUES (7)");
        CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
        PQclear(r);
        PQfinish(direct);
    }
    CHECK(pq.query("SELECT x FROM serve_db_direct.d") == rows{{"7"}});

    // SHOW DATABASES, with CockroachDB's columns.
    CHECK(pq.columns("SHOW DATABASES") ==
          std::vector<std::string>{"database_name", "owner", "primary_region", "secondary_region",
                                   "regions", "survival_goal"});
    const rows databases = pq.query("SHOW DATABASES");
    CHECK(std::count(databases.begin(), databases.end(),
                     std::vector<std::string>{db, s.backend.user(), "", "", "{}", ""}) == 1);
    CHECK(std::count_if(databases.begin(), databases.end(),
                        [&](const auto& row) { return row.at(0) == backend; }) == 1);
    CHECK(std::count_if(databases.begin(), databases.end(),
                        [&](const auto& row) { return row.at(0) == "serve_db_direct"; }) == 1);
    CHECK(pq.columns("SHOW DATABASES WITH COMMENT").back() == "comment");

    // What CockroachDB refuses, with its errors.
    CHECK(pq.failure("SELECT * FROM serve_db_nosuch.public.t") ==
          failure{"42P01", "relation \"serve_db_nosuch.public.t\" does not exist"});
    CHECK(pq.failure("SELECT * FROM serve_db_nosuch.t") ==
          failure{"42P01", "relation \"serve_db_nosuch.t\" does not exist"});
    CHECK(pq.failure("CREATE TABLE serve_db_nosuch.public.t (a INT8)") ==
          failure{"3F000",
                  "cannot create \"serve_db_nosuch.public.t\" because the target "
                  "database or schema does not exist"});
    CHECK(pq.failure("CREATE TABLE " + db + ".nosuch.t (a INT8)").first == "3F000");
    CHECK(pq.failure("CREATE SCHEMA serve_db_nosuch.s") ==
          failure{"3D000", "database \"serve_db_nosuch\" does not exist"});
    CHECK(pq.failure("DROP DATABASE serve_db_nosuch") ==
          failure{"3D000", "database \"serve_db_nosuch\" does not exist"});
    pq.query("DROP DATABASE IF EXISTS serve_db_nosuch");
    CHECK(pq.failure("DROP DATABASE " + db + " RESTRICT") ==
          failure{"2BP01", "database \"" + db + "\" is not empty and RESTRICT was specified"});
    CHECK(pq.failure("USE " + db).first == "0A000");
    pq.query("USE " + backend);
    CHECK(pq.failure("DROP DATABASE " + backend).first == "0A000");
    pq.query("SET CLUSTER SETTING kv.rangefeed.enabled = true");
    for (const std::string& table : {db + ".public.t", db + ".t"}) {
        const failure refused = pq.failure("CREATE CHANGEFEED FOR TABLE " + table +
                                           " INTO 'webhook-https://localhost:1/x'");
        CHECK(refused.first == "0A000");
        CHECK(refused.second.find("changefeeds on tables of databases other than") !=
              std::string::npos);
    }

    // DROP DATABASE (CASCADE, the default) drops its schemas, in the client's transaction.
    pq.query("BEGIN");
    pq.query("DROP DATABASE " + db);
    pq.query("ROLLBACK");
    CHECK(pq.query("SELECT count(*) FROM " + db + ".t") == rows{{"3"}});
    pq.query("DROP DATABASE " + db);
    pq.query("DROP DATABASE serve_db_direct CASCADE");
    CHECK(pq.query("SELECT count(*) FROM pg_namespace WHERE starts_with(nspname, 'serve_db_')") ==
          rows{{"0"}});
    CHECK(pq.failure("SELECT * FROM " + db + ".public.t").first == "42P01");
    for (const auto& row : pq.query("SHOW DATABASES")) {
        CHECK(row.at(0).rfind("serve_db_", 0) != 0);
    }
    // Empty databases can go RESTRICT.
    pq.query("CREATE DATABASE " + db);
    pq.query("DROP DATABASE " + db + " RESTRICT");
    pq.query("DROP TABLE serve_db_local");
}

TEST_CASE_METHOD(feed_fixture,
                 "serve: a three-table changefeed reaches an mTLS receiver message for message",
                 "[integration][serve]") {
    receiver.delay_rows(30ms);  // resolved timestamps would overtake rows still in flight
    pq.query("DROP TABLE IF EXISTS serve_parent, serve_child, serve_pair");
    pq.query("CREATE TABLE serve_parent (id INT8 PRIMARY KEY, name TEXT)");
    pq.query(
        "CREATE TABLE serve_child (id INT8 PRIMARY KEY, parent_id INT8, amount NUMERIC(10,2))");
    pq.query("CREATE TABLE serve_pair (a INT8, b TEXT, v JSONB, PRIMARY KEY (b, a))");
    const std::string job = create(
        "serve_parent, serve_child, public.serve_pair", "?route=r1&",
        "updated, resolved = '100ms', min_checkpoint_frequency = '100ms', initial_scan = 'no', "
        "webhook_auth_header = 'Bearer s3cret', webhook_sink_config = "
        "'{\"Flush\":{\"Messages\":3,\"Frequency\":\"20ms\"}}'");
    // The job row shows no key material and no auth header.
    const std::string description = pq.job_field(job, "description");
    CHECK(description.find("client_key=redacted") != std::string::npos);
    CHECK(description.find("s3cret") == std::string::npos);
    CHECK(pq.job_field(job, "status") == "running");
    CHECK(pq.job_field(job, "full_table_names") ==
          fmt::format("{{{0}.public.serve_parent,{0}.public.serve_child,{0}.public.serve_pair}}",
                      s.backend.database()));

    // Three multi-row transactions; each message below is what it must produce, without
    // "updated" (one value per transaction, checked separately).
    const std::vector<std::vector<std::string>> statements = {
        {"INSERT INTO serve_parent VALUES (1, 'p1'), (2, 'p2')",
         "INSERT INTO serve_child VALUES (10, 1, 5.5)",
         "INSERT INTO serve_pair VALUES (1, 'x', '{\"b\": 2, \"a\": [1e2, null]}')"},
        {"UPDATE serve_parent SET name = 'p1b' WHERE id = 1",
         "UPDATE serve_child SET amount = 6 WHERE id = 10", "DELETE FROM serve_parent WHERE id = 2",
         "UPDATE serve_pair SET b = 'y' WHERE a = 1"},
        {"DELETE FROM serve_child WHERE id = 10", "DELETE FROM serve_parent WHERE id = 1",
         "INSERT INTO serve_child VALUES (11, NULL, -0.01)",
         "UPDATE serve_child SET amount = 0.02 WHERE id = 11"},
    };
    const std::vector<std::set<std::string>> expected = {
        {R"({"after": {"id": 1, "name": "p1"}, "key": [1], "topic": "serve_parent")",
         R"({"after": {"id": 2, "name": "p2"}, "key": [2], "topic": "serve_parent")",
         R"({"after": {"amount": 5.50, "id": 10, "parent_id": 1}, "key": [10], "topic": "serve_child")",
         R"({"after": {"a": 1, "b": "x", "v": {"a": [100, null], "b": 2}}, "key": ["x", 1], "topic": "serve_pair")"},
        {R"({"after": {"id": 1, "name": "p1b"}, "key": [1], "topic": "serve_parent")",
         R"({"after": {"amount": 6.00, "id": 10, "parent_id": 1}, "key": [10], "topic": "serve_child")",
         R"({"after": null, "key": [2], "topic": "serve_parent")",
         R"({"after": null, "key": ["x", 1], "topic": "serve_pair")",
         R"({"after": {"a": 1, "b": "y", "v": {"a": [100, null], "b": 2}}, "key": ["y", 1], "topic": "serve_pair")"},
        {R"({"after": null, "key": [10], "topic": "serve_child")",
         R"({"after": null, "key": [1], "topic": "serve_parent")",
         R"({"after": {"amount": 0.02, "id": 11, "parent_id": null}, "key": [11], "topic": "serve_child")"},
    };
    for (const auto& txn : statements) {
        pq.query("BEGIN");
        for (const std::string& sql : txn) {
            pq.query(sql);
        }
        pq.query("COMMIT");
    }
    size_t expected_count = 0;
    for (const auto& e : expected) {
        expected_count += e.size();
    }
    // Everything delivered, and a resolved timestamp covering it.
    REQUIRE(wait_until([&] {
        const delivery d = split(receiver.requests());
        if (d.messages.size() < expected_count || d.resolved.empty()) {
            return false;
        }
        hlc newest;
        for (const auto& m : d.messages) {
            newest = std::max(newest, hlc::parse(m.updated).value());
        }
        return !(d.resolved.back().first < newest);
    }));
    const auto requests = receiver.requests();
    const delivery d = split(requests);
    CHECK(receiver.handshake_failures() == 0);
    for (const auto& r : requests) {
        CHECK(r.method == "POST");
        CHECK(r.target == fmt::format("/{}/public?route=r1", s.backend.database()));
        CHECK(r.content_type == "application/json");
        CHECK(r.user_agent == "Go-http-client/1.1");
        CHECK(r.authorization == "Bearer s3cret");
    }
    REQUIRE(d.messages.size() == expected_count);  // no faults: no duplicates

    // One HLC per transaction, increasing in commit order; exactly the expected messages.
    std::map<hlc, std::set<std::string>> by_txn;
    for (const auto& m : d.messages) {
        const std::string suffix = ", \"updated\": \"" + m.updated + "\"}";
        REQUIRE(m.text.size() > suffix.size());
        CHECK(m.text.substr(m.text.size() - suffix.size()) == suffix);
        by_txn[hlc::parse(m.updated).value()].insert(
            m.text.substr(0, m.text.size() - suffix.size()));
    }
    REQUIRE(by_txn.size() == expected.size());
    size_t t = 0;
    for (const auto& [updated, messages] : by_txn) {
        INFO("transaction " << t << " at " << updated.to_string());
        CHECK(messages == expected[t]);
        ++t;
    }

    // Per-key order, and resolved only after every row at or below it was acknowledged.
    std::map<std::pair<std::string, std::string>, hlc> last;
    for (const auto& m : d.messages) {
        const hlc u = hlc::parse(m.updated).value();
        auto [it, added] = last.try_emplace({m.topic, m.key}, u);
        if (!added) {
            CHECK(it->second < u);
            it->second = u;
        }
    }
    hlc previous;
    for (const auto& [resolved, index] : d.resolved) {
        CHECK_FALSE(resolved < previous);
        previous = resolved;
        for (const auto& m : d.messages) {
            if (!(resolved < hlc::parse(m.updated).value())) {
                // Answered (2xx) before the resolved timestamp was even sent.
                CHECK(requests[m.request].answered < requests[index].arrived);
            }
        }
    }
    pq.query("CANCEL JOB " + job);
    pq.query("DROP TABLE serve_parent, serve_child, serve_pair");
}

TEST_CASE_METHOD(feed_fixture, "serve: initial scan, a failing sink, CANCEL JOB",
                 "[integration][serve]") {
    pq.query("DROP TABLE IF EXISTS serve_scan");
    pq.query("CREATE TABLE serve_scan (id INT8 PRIMARY KEY, v TEXT)");
    pq.query("INSERT INTO serve_scan VALUES (1, 'old1'), (2, 'old2')");
    const std::string job = create(
        "serve_scan", "?",
        "updated, resolved = '100ms', min_checkpoint_frequency = '100ms', initial_scan = 'yes', "
        "webhook_sink_config = '{\"Retry\":{\"Max\":2,\"Backoff\":\"20ms\"}}'");

    // initial_scan='yes': the existing rows, at one timestamp, before any resolved timestamp.
    REQUIRE(wait_until([&] { return !split(receiver.requests()).resolved.empty(); }));
    delivery d = split(receiver.requests());
    REQUIRE(d.messages.size() == 2);
    CHECK(d.messages[0].updated == d.messages[1].updated);
    CHECK(d.messages[0].request < d.resolved.front().second);
    CHECK(d.messages[1].request < d.resolved.front().second);
    std::set<std::string> scanned = {d.messages[0].text, d.messages[1].text};
    CHECK(
        scanned ==
        std::set<std::string>{
            R"({"after": {"id": 1, "v": "old1"}, "key": [1], "topic": "serve_scan", "updated": ")" +
                d.messages[0].updated + "\"}",
            R"({"after": {"id": 2, "v": "old2"}, "key": [2], "topic": "serve_scan", "updated": ")" +
                d.messages[0].updated + "\"}"});

    // The sink answers 400: the job shows CockroachDB's error text, the row is retried.
    receiver.answer(400, "unknown schema: nowhere");
    pq.query("INSERT INTO serve_scan VALUES (3, 'new')");
    auto answered = [&](int status) {
        for (const auto& r : receiver.requests()) {
            if (r.status == status && r.body.find("\"key\": [3]") != std::string::npos) {
                return true;
            }
        }
        return false;
    };
    CHECK(wait_until([&] {
        return pq.job_field(job, "error") ==
               "transient error: 400 Bad Request: unknown schema: nowhere";
    }));
    CHECK(pq.job_field(job, "running_status") ==
          "transient error: 400 Bad Request: unknown schema: nowhere");
    CHECK(answered(400));
    CHECK_FALSE(answered(200));
    receiver.answer(200, "");
    CHECK(wait_until([&] { return answered(200); }));
    CHECK(wait_until([&] { return pq.job_field(job, "error").empty(); }));
    CHECK(pq.job_field(job, "running_status").find("running: resolved=") == 0);
    CHECK_FALSE(pq.job_field(job, "high_water_timestamp").empty());

    // CANCEL JOB: nothing more is sent.
    pq.query("CANCEL JOB " + job);
    CHECK(pq.job_field(job, "status") == "canceled");
    CHECK_FALSE(pq.job_field(job, "finished").empty());
    const size_t sent = receiver.requests().size();
    pq.query("INSERT INTO serve_scan VALUES (4, 'after cancel')");
    std::this_thread::sleep_for(1s);
    CHECK(receiver.requests().size() == sent);
    CHECK(pq.failure("CANCEL JOB " + job).second ==
          fmt::format("job {}: cannot be requested to be canceled, current status: canceled", job));
    pq.query("DROP TABLE serve_scan");
}

TEST_CASE_METHOD(
    feed_fixture,
    "serve: diff before images; PAUSE JOB holds changes back, RESUME JOB delivers them",
    "[integration][serve]") {
    pq.query("DROP TABLE IF EXISTS serve_diff");
    pq.query("CREATE TABLE serve_diff (id INT8 PRIMARY KEY, v TEXT)");
    pq.query("INSERT INTO serve_diff VALUES (1, 'a')");
    const std::string job =
        create("serve_diff", "?",
               "updated, diff, resolved = '100ms', min_checkpoint_frequency = '100ms', "
               "initial_scan = 'no'");
    // Before images need the old row in the WAL.
    CHECK(pq.query("SELECT relreplident FROM pg_class WHERE relname = 'serve_diff'").at(0).at(0) ==
          "f");
    pq.query("UPDATE serve_diff SET v = 'b' WHERE id = 1");
    pq.query("DELETE FROM serve_diff WHERE id = 1");
    pq.query("INSERT INTO serve_diff VALUES (2, 'c')");
    REQUIRE(wait_until([&] { return split(receiver.requests()).messages.size() >= 3; }));
    delivery d = split(receiver.requests());
    REQUIRE(d.messages.size() == 3);
    auto without_updated = [](const received_message& m) {
        return m.text.substr(0, m.text.find(", \"updated\": "));
    };
    // Keys are independent (any order between them); one key's versions come in order.
    std::vector<std::string> key1;
    std::set<std::string> key2;
    for (const auto& m : d.messages) {
        if (m.key == "[1]") {
            key1.push_back(without_updated(m));
        } else {
            key2.insert(without_updated(m));
        }
    }
    CHECK(
        key1 ==
        std::vector<std::string>{
            R"({"after": {"id": 1, "v": "b"}, "before": {"id": 1, "v": "a"}, "key": [1], "topic": "serve_diff")",
            R"({"after": null, "before": {"id": 1, "v": "b"}, "key": [1], "topic": "serve_diff")"});
    CHECK(
        key2 ==
        std::set<std::string>{
            R"({"after": {"id": 2, "v": "c"}, "before": null, "key": [2], "topic": "serve_diff")"});

    // Paused, nothing goes out; resumed, the change made meanwhile arrives.
    pq.query("PAUSE JOB " + job);
    CHECK(pq.job_field(job, "status") == "paused");
    const size_t sent = receiver.requests().size();
    pq.query("INSERT INTO serve_diff VALUES (3, 'while paused')");
    std::this_thread::sleep_for(500ms);
    CHECK(receiver.requests().size() == sent);
    CHECK(pq.failure("PAUSE JOB " + job).second ==
          fmt::format("job {}: cannot be requested to be paused, current status: paused", job));
    pq.query("RESUME JOB " + job);
    CHECK(pq.job_field(job, "status") == "running");
    CHECK(wait_until([&] {
        for (const auto& m : split(receiver.requests()).messages) {
            if (m.key == "[3]") {
                return true;
            }
        }
        return false;
    }));
    pq.query("CANCEL JOB " + job);
    pq.query("DROP TABLE serve_diff");
}

TEST_CASE("serve: history older than --gc-ttl is gone, except what a changefeed protects",
          "[integration][serve]") {
    certificates certs;
    mtls_receiver receiver(certs);
    stand_in s(1s);
    client pq(s);
    pq.query("DROP TABLE IF EXISTS serve_gc");
    pq.query("CREATE TABLE serve_gc (id INT8 PRIMARY KEY)");
    pq.query("SET CLUSTER SETTING kv.rangefeed.enabled = true");
    const std::string old_cursor = pq.query("SELECT cluster_logical_timestamp()").at(0).at(0);
    pq.query("INSERT INTO serve_gc VALUES (1)");
    std::this_thread::sleep_for(1500ms);
    pq.query("INSERT INTO serve_gc VALUES (2)");  // the capture drops what is older than 1s
    const std::string sink = fmt::format(
        "'webhook-https://localhost:{}/{}/public?ca_cert={}&client_cert={}&client_key={}'",
        receiver.port(), s.backend.database(), certs.param("ca.crt"), certs.param("client.crt"),
        certs.param("client.key"));
    CHECK(wait_until([&] {
        PGresult* r = PQexec(pq.conn, ("CREATE CHANGEFEED FOR TABLE serve_gc INTO " + sink +
                                       " WITH updated, cursor = '" + old_cursor + "'")
                                          .c_str());
        const bool refused =
            PQresultStatus(r) == PGRES_FATAL_ERROR &&
            std::string(PQresultErrorMessage(r)).find("must be after replica GC threshold") !=
                std::string::npos;
        if (PQresultStatus(r) == PGRES_TUPLES_OK) {
            pq.query(std::string("CANCEL JOB ") + PQgetvalue(r, 0, 0));
        }
        PQclear(r);
        return refused;
    }));

    // A feed paused for longer than the history is kept resumes where it was: its protected
    // timestamp (at its checkpoint) kept the changes since, as CockroachDB's does.
    const std::string job =
        pq.query("CREATE CHANGEFEED FOR TABLE serve_gc INTO " + sink +
                 " WITH updated, resolved = '100ms', min_checkpoint_frequency = '100ms', "
                 "initial_scan = 'no'")
            .at(0)
            .at(0);
    pq.query("INSERT INTO serve_gc VALUES (3)");
    REQUIRE(wait_until([&] { return !split(receiver.requests()).resolved.empty(); }));
    pq.query("PAUSE JOB " + job);
    const std::string paused_at = pq.query("SELECT cluster_logical_timestamp()").at(0).at(0);
    pq.query("INSERT INTO serve_gc VALUES (4)");
    std::this_thread::sleep_for(1500ms);
    pq.query("INSERT INTO serve_gc VALUES (5)");
    std::this_thread::sleep_for(200ms);
    // A cursor at the pause: older than --gc-ttl, yet protected. (Jobs that send to this
    // receiver carry `updated`: split() reads it from every message.)
    auto create_at = [&](const std::string& cursor) {
        PGresult* r = PQexec(pq.conn, ("CREATE CHANGEFEED FOR TABLE serve_gc INTO " + sink +
                                       " WITH updated, cursor = '" + cursor + "'")
                                          .c_str());
        const bool created = PQresultStatus(r) == PGRES_TUPLES_OK;
        if (created) {
            // It may have failed already: GC ran between the check and the job's first read.
            PQclear(PQexec(pq.conn, (std::string("CANCEL JOB ") + PQgetvalue(r, 0, 0)).c_str()));
        }
        PQclear(r);
        return created;
    };
    CHECK(create_at(paused_at));
    // What the resumed job sends (the jobs above are cancelled: they send nothing more, and
    // what they had on the wire has arrived after a moment).
    std::this_thread::sleep_for(300ms);
    const size_t before_resume = receiver.requests().size();
    pq.query("RESUME JOB " + job);
    auto resumed_keys = [&] {
        std::set<std::string> out;
        for (const received_message& m : split(receiver.requests()).messages) {
            if (m.request >= before_resume) {
                out.insert(m.key);
            }
        }
        return out;
    };
    CHECK(wait_until([&] {
        const std::set<std::string> keys = resumed_keys();
        return keys.count("[4]") == 1 && keys.count("[5]") == 1;
    }));
    CHECK(pq.job_field(job, "status") == "running");
    CHECK(pq.job_field(job, "error").empty());
    pq.query("CANCEL JOB " + job);

    // Once the job is gone, so is its protection: GC drops what it kept.
    CHECK(wait_until([&] {
        pq.query("INSERT INTO serve_gc VALUES (6) ON CONFLICT (id) DO NOTHING");
        return !create_at(paused_at);
    }));
    pq.query("DROP TABLE serve_gc");
}

namespace {

// The messages of `d` for `topic`, without their "updated" field, by key; and the HLCs seen.
struct topic_view {
    std::map<std::string, std::vector<std::string>> by_key;  // in arrival order
    std::set<std::string> updated;
};
topic_view view_of(const delivery& d, const std::string& topic, const std::string& updated) {
    topic_view v;
    for (const auto& m : d.messages) {
        if (m.topic != topic || (!updated.empty() && m.updated != updated)) {
            continue;
        }
        v.by_key[m.key].push_back(m.text.substr(0, m.text.find(", \"updated\": ")));
        v.updated.insert(m.updated);
    }
    return v;
}

}  // namespace

TEST_CASE_METHOD(feed_fixture,
                 "serve: an initial scan at a cursor sends the rows as of the cursor, then every "
                 "change after it",
                 "[integration][serve]") {
    pq.query("DROP TABLE IF EXISTS serve_cursor");
    pq.query("CREATE TABLE serve_cursor (id INT8 PRIMARY KEY, v TEXT)");
    pq.query("INSERT INTO serve_cursor VALUES (1, 'a'), (2, 'b'), (3, 'c')");
    // An earlier feed of the table (the stand-in keeps whole old rows of changefeed tables).
    const std::string first = create("serve_cursor", "?", "initial_scan = 'no'");
    pq.query("CANCEL JOB " + first);
    const std::string cursor = pq.query("SELECT cluster_logical_timestamp()").at(0).at(0);
    pq.query("UPDATE serve_cursor SET v = 'a2' WHERE id = 1");
    pq.query("DELETE FROM serve_cursor WHERE id = 2");
    pq.query("INSERT INTO serve_cursor VALUES (4, 'd')");
    pq.query("UPDATE serve_cursor SET id = 5 WHERE id = 3");

    create("serve_cursor", "?",
           fmt::format("updated, resolved = '100ms', min_checkpoint_frequency = '100ms', "
                       "cursor = '{}', initial_scan = 'yes'",
                       cursor));
    REQUIRE(wait_until([&] {
        const delivery d = split(receiver.requests());
        return !d.resolved.empty() && d.messages.size() >= 8;
    }));
    const delivery d = split(receiver.requests());
    // The scan: the rows as they were at the cursor, carrying it.
    const topic_view scan = view_of(d, "serve_cursor", cursor);
    CHECK(scan.by_key ==
          std::map<std::string, std::vector<std::string>>{
              {"[1]", {R"({"after": {"id": 1, "v": "a"}, "key": [1], "topic": "serve_cursor")"}},
              {"[2]", {R"({"after": {"id": 2, "v": "b"}, "key": [2], "topic": "serve_cursor")"}},
              {"[3]", {R"({"after": {"id": 3, "v": "c"}, "key": [3], "topic": "serve_cursor")"}}});
    // Then every change after it, above it.
    const topic_view all = view_of(d, "serve_cursor", "");
    CHECK(all.updated.size() == 5);  // the cursor and four transactions
    CHECK(all.by_key.at("[1]").back() ==
          R"({"after": {"id": 1, "v": "a2"}, "key": [1], "topic": "serve_cursor")");
    CHECK(all.by_key.at("[2]").back() == R"({"after": null, "key": [2], "topic": "serve_cursor")");
    CHECK(all.by_key.at("[3]").back() == R"({"after": null, "key": [3], "topic": "serve_cursor")");
    CHECK(all.by_key.at("[4]") ==
          std::vector<std::string>{
              R"({"after": {"id": 4, "v": "d"}, "key": [4], "topic": "serve_cursor")"});
    CHECK(all.by_key.at("[5]") ==
          std::vector<std::string>{
              R"({"after": {"id": 5, "v": "c"}, "key": [5], "topic": "serve_cursor")"});

    // A table whose changes after the cursor lack their old rows cannot be rewound: the job
    // fails and says why.
    pq.query("DROP TABLE IF EXISTS serve_cursor_plain");
    pq.query("CREATE TABLE serve_cursor_plain (id INT8 PRIMARY KEY, v TEXT)");
    pq.query("INSERT INTO serve_cursor_plain VALUES (1, 'a')");
    const std::string before = pq.query("SELECT cluster_logical_timestamp()").at(0).at(0);
    pq.query("UPDATE serve_cursor_plain SET v = 'b'");
    const std::string job = create("serve_cursor_plain", "?",
                                   fmt::format("cursor = '{}', initial_scan = 'yes'", before));
    CHECK(wait_until([&] { return pq.job_field(job, "status") == "failed"; }));
    CHECK_THAT(pq.job_field(job, "error"), Catch::Contains("old row"));
    pq.query("DROP TABLE serve_cursor_plain");
    pq.query("DROP TABLE serve_cursor");
}

// CockroachDB's schema_change_policy='backfill' (the default) with the default
// schema_change_events: ADD COLUMN with a non-NULL default (or computed) and DROP COLUMN re-send
// every row of the table under the new schema, at the schema change's timestamp; ADD COLUMN
// without a default does not.
TEST_CASE_METHOD(feed_fixture,
                 "serve: ADD COLUMN with a default and DROP COLUMN backfill the table",
                 "[integration][serve]") {
    pq.query("DROP TABLE IF EXISTS serve_backfill");
    pq.query("CREATE TABLE serve_backfill (id INT8 PRIMARY KEY, v TEXT)");
    pq.query("INSERT INTO serve_backfill VALUES (1, 'a'), (2, 'b'), (3, 'c')");
    const std::string job = create("serve_backfill", "?",
                                   "updated, mvcc_timestamp, resolved = '100ms', "
                                   "min_checkpoint_frequency = '100ms', initial_scan = 'no'");
    auto ours = [&] {
        std::vector<received_message> out;
        for (received_message& m : split(receiver.requests()).messages) {
            if (m.topic == "serve_backfill") {
                out.push_back(std::move(m));
            }
        }
        return out;
    };
    auto resolved_above = [&](const std::string& t) {
        const delivery d = split(receiver.requests());
        return !d.resolved.empty() && hlc::parse(t).value() < d.resolved.back().first;
    };
    pq.query("UPDATE serve_backfill SET v = 'b2' WHERE id = 2");
    REQUIRE(wait_until([&] { return ours().size() == 1; }));
    const std::string update = ours()[0].updated;

    pq.query("ALTER TABLE serve_backfill ADD COLUMN n INT8 NOT NULL DEFAULT 7");
    REQUIRE(wait_until([&] { return ours().size() == 4; }));
    auto all = ours();
    const std::string added = all[1].updated;
    CHECK(hlc::parse(update).value() < hlc::parse(added).value());
    std::map<std::string, std::string> rows;
    for (size_t i = 1; i < all.size(); ++i) {
        CHECK(all[i].updated == added);  // one timestamp: the schema change's
        const auto msg = proto::json::parse(all[i].text).value();
        rows[all[i].key] = proto::to_crdb_text(*msg.find("after"));
        // mvcc_timestamp: the row's own commit time, not the backfill's.
        const hlc mvcc = hlc::parse(msg.find("mvcc_timestamp")->text()).value();
        CHECK(mvcc < hlc::parse(added).value());
        if (all[i].key == "[2]") {
            CHECK(mvcc == hlc::parse(update).value());
        }
    }
    CHECK(rows == std::map<std::string, std::string>{{"[1]", R"({"id": 1, "n": 7, "v": "a"})"},
                                                     {"[2]", R"({"id": 2, "n": 7, "v": "b2"})"},
                                                     {"[3]", R"({"id": 3, "n": 7, "v": "c"})"}});

    // Nullable, no default: no backfill; rows written after carry the column.
    pq.query("ALTER TABLE serve_backfill ADD COLUMN note TEXT");
    pq.query("INSERT INTO serve_backfill VALUES (4, 'd', 8, 'x')");
    REQUIRE(wait_until([&] { return ours().size() >= 5; }));
    REQUIRE(wait_until([&] { return resolved_above(ours().back().updated); }));
    all = ours();
    REQUIRE(all.size() == 5);
    CHECK(all[4].text.rfind(R"({"after": {"id": 4, "n": 8, "note": "x", "v": "d"}, "key": [4])",
                            0) == 0);

    // DROP COLUMN: every row again, without it.
    pq.query("ALTER TABLE serve_backfill DROP COLUMN v");
    REQUIRE(wait_until([&] { return ours().size() >= 9; }));
    REQUIRE(wait_until([&] { return resolved_above(ours().back().updated); }));
    all = ours();
    REQUIRE(all.size() == 9);
    rows.clear();
    for (size_t i = 5; i < all.size(); ++i) {
        CHECK(all[i].updated == all[5].updated);
        rows[all[i].key] =
            proto::to_crdb_text(*proto::json::parse(all[i].text).value().find("after"));
    }
    CHECK(rows == std::map<std::string, std::string>{{"[1]", R"({"id": 1, "n": 7, "note": null})"},
                                                     {"[2]", R"({"id": 2, "n": 7, "note": null})"},
                                                     {"[3]", R"({"id": 3, "n": 7, "note": null})"},
                                                     {"[4]", R"({"id": 4, "n": 8, "note": "x"})"}});
    pq.query("CANCEL JOB " + job);
    pq.query("DROP TABLE serve_backfill");
}

TEST_CASE_METHOD(feed_fixture,
                 "serve: schema_change_policy nobackfill and stop, schema_change_events "
                 "column_changes",
                 "[integration][serve]") {
    pq.query("DROP TABLE IF EXISTS serve_policy");
    pq.query("CREATE TABLE serve_policy (id INT8 PRIMARY KEY, v TEXT)");
    pq.query("INSERT INTO serve_policy VALUES (1, 'a'), (2, 'b')");
    auto count = [&](size_t from) {
        size_t n = 0;
        const delivery d = split(receiver.requests());
        for (const received_message& m : d.messages) {
            n += m.topic == "serve_policy" && m.request >= from ? 1 : 0;
        }
        return n;
    };
    const std::string options =
        "updated, resolved = '100ms', min_checkpoint_frequency = '100ms', initial_scan = 'no'";
    {
        // nobackfill: the new column shows in rows written after it, nothing is re-sent.
        const std::string job =
            create("serve_policy", "?", options + ", schema_change_policy = 'nobackfill'");
        pq.query("ALTER TABLE serve_policy ADD COLUMN n INT8 NOT NULL DEFAULT 7");
        pq.query("UPDATE serve_policy SET v = 'a2' WHERE id = 1");
        REQUIRE(wait_until([&] { return count(0) >= 1; }));
        // Once a resolved timestamp covers the update (after the change), nothing else came.
        hlc update;
        for (const received_message& m : split(receiver.requests()).messages) {
            if (m.topic == "serve_policy") {
                update = hlc::parse(m.updated).value();
            }
        }
        REQUIRE(wait_until([&] {
            const delivery d = split(receiver.requests());
            return !d.resolved.empty() && !(d.resolved.back().first < update);
        }));
        CHECK(count(0) == 1);
        pq.query("CANCEL JOB " + job);
    }
    {
        // column_changes: a nullable column without a default backfills too.
        const size_t from = receiver.requests().size();
        const std::string job =
            create("serve_policy", "?", options + ", schema_change_events = 'column_changes'");
        pq.query("ALTER TABLE serve_policy ADD COLUMN note TEXT");
        CHECK(wait_until([&] { return count(from) == 2; }));
        for (const auto& r : receiver.requests()) {
            INFO(r.body);
            CHECK(r.status == 200);
        }
        pq.query("CANCEL JOB " + job);
        CHECK(pq.failure("CREATE CHANGEFEED FOR TABLE serve_policy INTO "
                         "'webhook-https://localhost:1/x' WITH schema_change_policy = 'sometimes'")
                  .second == "unknown schema_change_policy: sometimes");
    }
    {
        // stop: what came before is sent and resolved, then the job fails at the change.
        const size_t from = receiver.requests().size();
        const std::string job =
            create("serve_policy", "?", options + ", schema_change_policy = 'stop'");
        pq.query("UPDATE serve_policy SET v = 'b2' WHERE id = 2");
        REQUIRE(wait_until([&] { return count(from) == 1; }));
        pq.query("ALTER TABLE serve_policy DROP COLUMN note");
        CHECK(wait_until([&] { return pq.job_field(job, "status") == "failed"; }));
        CHECK_THAT(pq.job_field(job, "error"), Catch::StartsWith("schema change occurred at "));
        CHECK(count(from) == 1);  // no backfill
        const delivery d = split(receiver.requests());
        hlc update;
        for (const received_message& m : d.messages) {
            if (m.topic == "serve_policy" && m.request >= from) {
                update = hlc::parse(m.updated).value();
            }
        }
        REQUIRE_FALSE(d.resolved.empty());
        CHECK_FALSE(d.resolved.back().first < update);  // the update was resolved before it failed
    }
    pq.query("DROP TABLE serve_policy");
}

// CockroachDB: a scanned row's `updated` is the scan's time, its mvcc_timestamp the real commit
// time of the version scanned.
TEST_CASE_METHOD(feed_fixture, "serve: a scan's rows carry their commit time as mvcc_timestamp",
                 "[integration][serve]") {
    pq.query("DROP TABLE IF EXISTS serve_mvcc");
    pq.query("CREATE TABLE serve_mvcc (id INT8 PRIMARY KEY, v TEXT)");
    auto ours = [&](size_t from) {
        std::vector<std::pair<std::string, std::pair<hlc, hlc>>> out;  // key, (updated, mvcc)
        const delivery d = split(receiver.requests());
        for (const received_message& m : d.messages) {
            if (m.topic == "serve_mvcc" && m.request >= from) {
                const auto msg = proto::json::parse(m.text).value();
                out.emplace_back(m.key,
                                 std::pair{hlc::parse(m.updated).value(),
                                           hlc::parse(msg.find("mvcc_timestamp")->text()).value()});
            }
        }
        return out;
    };
    // A feed of the live changes tells each transaction's HLC (mvcc_timestamp = updated there).
    const std::string live =
        create("serve_mvcc", "?", "updated, mvcc_timestamp, initial_scan = 'no'");
    pq.query("INSERT INTO serve_mvcc VALUES (1, 'a'), (2, 'b')");
    pq.query("UPDATE serve_mvcc SET v = 'b2' WHERE id = 2");
    pq.query("INSERT INTO serve_mvcc VALUES (3, 'c')");
    REQUIRE(wait_until([&] { return ours(0).size() == 4; }));
    const std::string cursor = pq.query("SELECT cluster_logical_timestamp()").at(0).at(0);
    pq.query("UPDATE serve_mvcc SET v = 'a2' WHERE id = 1");
    REQUIRE(wait_until([&] { return ours(0).size() == 5; }));
    pq.query("CANCEL JOB " + live);
    std::map<std::string, std::vector<hlc>> commits;  // per key, oldest first
    for (const auto& [key, times] : ours(0)) {
        CHECK(times.first == times.second);
        commits[key].push_back(times.first);
    }
    REQUIRE(commits.size() == 3);
    REQUIRE(commits["[1]"].size() == 2);
    REQUIRE(commits["[2]"].size() == 2);

    // A scan now: the scan's time in `updated`, each row's last commit in mvcc_timestamp.
    size_t from = receiver.requests().size();
    create("serve_mvcc", "?", "updated, mvcc_timestamp, initial_scan = 'only'");
    REQUIRE(wait_until([&] { return ours(from).size() == 3; }));
    auto scanned = ours(from);
    const hlc now = scanned.front().second.first;
    for (const auto& [key, times] : scanned) {
        INFO(key);
        CHECK(times.first == now);
        CHECK(times.second == commits[key].back());
        CHECK(times.second < now);
    }
    // A scan at the cursor: the versions then, with their own commit times.
    from = receiver.requests().size();
    create("serve_mvcc", "?",
           fmt::format("updated, mvcc_timestamp, cursor = '{}', initial_scan = 'only'", cursor));
    REQUIRE(wait_until([&] { return ours(from).size() == 3; }));
    scanned = ours(from);
    for (const auto& [key, times] : scanned) {
        INFO(key);
        CHECK(times.first == hlc::parse(cursor).value());
        CHECK(times.second == (key == "[1]" ? commits[key].front() : commits[key].back()));
    }
    pq.query("DROP TABLE serve_mvcc");
}

TEST_CASE_METHOD(feed_fixture,
                 "serve: ALTER CHANGEFEED ADD ... WITH initial_scan scans the added table at the "
                 "high-water mark",
                 "[integration][serve]") {
    pq.query("DROP TABLE IF EXISTS serve_alter_a");
    pq.query("DROP TABLE IF EXISTS serve_alter_b");
    pq.query("CREATE TABLE serve_alter_a (id INT8 PRIMARY KEY, v TEXT)");
    pq.query("CREATE TABLE serve_alter_b (id INT8 PRIMARY KEY, v TEXT)");
    pq.query("INSERT INTO serve_alter_b VALUES (1, 'b1'), (2, 'b2')");
    const std::string job = create(
        "serve_alter_a", "?",
        "updated, resolved = '100ms', min_checkpoint_frequency = '100ms', initial_scan = 'no'");
    pq.query("INSERT INTO serve_alter_a VALUES (1, 'a1')");
    REQUIRE(wait_until([&] {
        const delivery d = split(receiver.requests());
        return !d.messages.empty() && d.resolved.size() >= 2;
    }));
    CHECK(pq.failure("ALTER CHANGEFEED " + job + " ADD serve_alter_b").second ==
          "job " + job + " is not paused");
    pq.query("PAUSE JOB " + job);
    const std::string high_water = pq.job_field(job, "high_water_timestamp");
    REQUIRE_FALSE(high_water.empty());
    CHECK(pq.failure("ALTER CHANGEFEED " + job + " ADD serve_alter_a").second ==
          "target \"serve_alter_a\" already watched by changefeed");
    CHECK(pq.failure("ALTER CHANGEFEED " + job + " DROP serve_alter_b").second ==
          "target \"serve_alter_b\" already not watched by changefeed");
    CHECK(pq.failure("ALTER CHANGEFEED " + job + " DROP serve_alter_a").second ==
          "cannot drop all targets");
    CHECK(pq.failure("ALTER CHANGEFEED " + job + " ADD no_such_table").second ==
          "target \"no_such_table\" does not exist");
    CHECK(pq.failure("ALTER CHANGEFEED " + job +
                     " ADD serve_alter_b WITH initial_scan, no_initial_scan")
              .second == "cannot specify both \"initial_scan\" and \"no_initial_scan\"");
    CHECK(pq.failure("ALTER CHANGEFEED " + job + " ADD serve_alter_b WITH initial_scan = 'only'")
              .first == "0A000");
    const auto altered =
        pq.query("ALTER CHANGEFEED " + job + " ADD serve_alter_b WITH initial_scan = 'yes'");
    REQUIRE(altered.size() == 1);
    CHECK(altered[0][0] == job);
    CHECK_THAT(altered[0][1],
               Catch::StartsWith("CREATE CHANGEFEED FOR TABLE serve_alter_a, serve_alter_b INTO"));
    CHECK(pq.job_field(job, "description") == altered[0][1]);
    CHECK_THAT(pq.job_field(job, "full_table_names"), Catch::Contains("serve_alter_b"));
    // Changed after the high-water mark (and after the ALTER): the scan still shows the row
    // as it was at the mark, and the change follows.
    pq.query("UPDATE serve_alter_b SET v = 'b1 later' WHERE id = 1");
    const size_t before_resume = receiver.requests().size();
    pq.query("RESUME JOB " + job);
    REQUIRE(wait_until([&] {
        const delivery d = split(receiver.requests());
        return view_of(d, "serve_alter_b", "").by_key["[1]"].size() >= 2 &&
               d.resolved.back().second >= before_resume;
    }));
    const delivery d = split(receiver.requests());
    const topic_view scan = view_of(d, "serve_alter_b", high_water);
    CHECK(
        scan.by_key ==
        std::map<std::string, std::vector<std::string>>{
            {"[1]", {R"({"after": {"id": 1, "v": "b1"}, "key": [1], "topic": "serve_alter_b")"}},
            {"[2]", {R"({"after": {"id": 2, "v": "b2"}, "key": [2], "topic": "serve_alter_b")"}}});
    const topic_view all = view_of(d, "serve_alter_b", "");
    CHECK(all.by_key.at("[1]").back() ==
          R"({"after": {"id": 1, "v": "b1 later"}, "key": [1], "topic": "serve_alter_b")");
    CHECK(all.updated.size() == 2);
    pq.query("CANCEL JOB " + job);
    pq.query("DROP TABLE serve_alter_a");
    pq.query("DROP TABLE serve_alter_b");
}

TEST_CASE_METHOD(feed_fixture,
                 "serve: column families are separate streams of partial rows, table.family",
                 "[integration][serve][families]") {
    pq.query("DROP TABLE IF EXISTS serve_fam");
    // PostgreSQL gets the table without its FAMILY clauses; the stand-in keeps them.
    pq.query(
        "CREATE TABLE serve_fam (id INT8 PRIMARY KEY, a TEXT, b TEXT, c TEXT, FAMILY f1 (id, a), "
        "FAMILY f2 (b, c))");
    pq.query("INSERT INTO serve_fam VALUES (1, 'a1', 'b1', 'c1')");
    pq.query("SET CLUSTER SETTING kv.rangefeed.enabled = true");
    auto refused = [&](std::string_view targets, std::string_view options) {
        return pq.failure(
            fmt::format("CREATE CHANGEFEED FOR TABLE {} INTO "
                        "'webhook-https://localhost:1/x?insecure_tls_skip_verify=true' "
                        "WITH initial_scan = 'no'{}",
                        targets, options));
    };
    CHECK(refused("serve_fam", "").second ==
          "CHANGEFEED targeting a table (serve_fam) with multiple column families requires WITH "
          "split_column_families and will emit multiple events per row.");
    CHECK(refused("serve_fam", ", split_column_families, resolved")
              .second.find(
                  "resolved timestamps are not currently supported with split_column_families") ==
          0);
    CHECK(refused("serve_fam FAMILY nope", "").second ==
          "CHANGEFEED targeting nonexistent or removed column family nope of table serve_fam");
    // split_column_families (without resolved) is accepted: one stream per family.
    const std::string split_job =
        create("serve_fam", "?", "split_column_families, initial_scan = 'no'");
    CHECK(pq.job_field(split_job, "topics") == "serve_fam.f1,serve_fam.f2");
    pq.query("CANCEL JOB " + split_job);

    // Both families as targets, with resolved timestamps (CockroachDB's workaround).
    const std::string job = create(
        "serve_fam FAMILY f1, TABLE serve_fam FAMILY f2", "?",
        "updated, resolved = '100ms', min_checkpoint_frequency = '100ms', initial_scan = 'yes'");
    CHECK(pq.job_field(job, "topics") == "serve_fam.f1,serve_fam.f2");
    CHECK(pq.job_field(job, "description")
              .find("CREATE CHANGEFEED FOR TABLE serve_fam FAMILY f1, serve_fam FAMILY f2 INTO") ==
          0);
    REQUIRE(wait_until([&] { return !split(receiver.requests()).resolved.empty(); }));
    pq.query("UPDATE serve_fam SET c = 'c2' WHERE id = 1");  // f2 only
    pq.query("UPDATE serve_fam SET a = 'a2' WHERE id = 1");  // f1 only
    pq.query("INSERT INTO serve_fam VALUES (2, 'a3', NULL, 'c3')");
    pq.query("DELETE FROM serve_fam WHERE id = 1");
    REQUIRE(wait_until([&] { return split(receiver.requests()).messages.size() >= 8; }));
    std::this_thread::sleep_for(300ms);  // nothing more comes
    const delivery d = split(receiver.requests());
    CHECK(d.messages.size() == 8);
    const topic_view f1 = view_of(d, "serve_fam.f1", "");
    const topic_view f2 = view_of(d, "serve_fam.f2", "");
    CHECK(f1.by_key ==
          std::map<std::string, std::vector<std::string>>{
              {"[1]",
               {R"({"after": {"a": "a1", "id": 1}, "key": [1], "topic": "serve_fam.f1")",
                R"({"after": {"a": "a2", "id": 1}, "key": [1], "topic": "serve_fam.f1")",
                R"({"after": null, "key": [1], "topic": "serve_fam.f1")"}},
              {"[2]", {R"({"after": {"a": "a3", "id": 2}, "key": [2], "topic": "serve_fam.f1")"}}});
    CHECK(
        f2.by_key ==
        std::map<std::string, std::vector<std::string>>{
            {"[1]",
             {R"({"after": {"b": "b1", "c": "c1"}, "key": [1], "topic": "serve_fam.f2")",
              R"({"after": {"b": "b1", "c": "c2"}, "key": [1], "topic": "serve_fam.f2")",
              R"({"after": null, "key": [1], "topic": "serve_fam.f2")"}},
            {"[2]", {R"({"after": {"b": null, "c": "c3"}, "key": [2], "topic": "serve_fam.f2")"}}});
    // The scan's rows share one HLC; each update's one message has its own.
    CHECK(f1.updated.size() == 4);
    CHECK(f2.updated.size() == 4);
    pq.query("CANCEL JOB " + job);
    pq.query("DROP TABLE serve_fam");
}

TEST_CASE_METHOD(feed_fixture,
                 "serve: ALTER CHANGEFEED ADD before the first scan was acknowledged scans "
                 "every table again, once",
                 "[integration][serve]") {
    pq.query("DROP TABLE IF EXISTS serve_pending_a");
    pq.query("DROP TABLE IF EXISTS serve_pending_b");
    pq.query("CREATE TABLE serve_pending_a (id INT8 PRIMARY KEY, v TEXT)");
    pq.query("CREATE TABLE serve_pending_b (id INT8 PRIMARY KEY, v TEXT)");
    pq.query("INSERT INTO serve_pending_a VALUES (1, 'a1'), (2, 'a2')");
    pq.query("INSERT INTO serve_pending_b VALUES (1, 'b1')");
    receiver.answer(503, "not yet");
    const std::string job = create(
        "serve_pending_a", "?",
        "updated, resolved = '100ms', min_checkpoint_frequency = '100ms', initial_scan = 'yes', "
        "webhook_sink_config = '{\"Retry\":{\"Max\":1,\"Backoff\":\"10ms\"}}'");
    REQUIRE(wait_until([&] { return !receiver.requests().empty(); }));
    pq.query("PAUSE JOB " + job);
    pq.query("ALTER CHANGEFEED " + job + " ADD serve_pending_b WITH initial_scan");
    const size_t before = receiver.requests().size();
    receiver.answer(200, "");
    pq.query("RESUME JOB " + job);
    REQUIRE(wait_until([&] {
        const auto all = receiver.requests();
        for (size_t i = before; i < all.size(); ++i) {
            if (all[i].status == 200 && all[i].body.find("\"resolved\"") != std::string::npos) {
                return true;
            }
        }
        return false;
    }));
    const auto all = receiver.requests();
    const delivery d = split({all.begin() + static_cast<std::ptrdiff_t>(before), all.end()});
    std::multiset<std::string> keys;
    std::set<std::string> updated;
    for (const auto& m : d.messages) {
        keys.insert(m.topic + m.key);
        updated.insert(m.updated);
    }
    // One scan of both tables at one HLC, each row once per request stream (no second scan).
    CHECK(std::set<std::string>(keys.begin(), keys.end()) ==
          std::set<std::string>{"serve_pending_a[1]", "serve_pending_a[2]", "serve_pending_b[1]"});
    CHECK(updated.size() == 1);
    pq.query("CANCEL JOB " + job);
    pq.query("DROP TABLE serve_pending_a");
    pq.query("DROP TABLE serve_pending_b");
}

// wal2json leaves a TOASTed value that an UPDATE did not change out of the new row; CockroachDB
// always sends every column.
TEST_CASE_METHOD(feed_fixture, "serve: an unchanged TOASTed value is sent whole",
                 "[integration][serve]") {
    pq.query("DROP TABLE IF EXISTS serve_toast");
    pq.query("CREATE TABLE serve_toast (id INT8 PRIMARY KEY, n INT8, big TEXT, other TEXT)");
    // Stored out of line, uncompressed: 12 800 bytes, beyond the 2 kB TOAST threshold.
    pq.query("ALTER TABLE serve_toast ALTER COLUMN big SET STORAGE EXTERNAL");
    pq.query("ALTER TABLE serve_toast ALTER COLUMN other SET STORAGE EXTERNAL");
    pq.query(
        "INSERT INTO serve_toast SELECT 1, 0, string_agg(md5(g::text), ''), "
        "string_agg(md5((-g)::text), '') FROM generate_series(1, 400) g");
    const std::string job =
        create("serve_toast", "?",
               "updated, diff, resolved = '100ms', min_checkpoint_frequency = '100ms', "
               "initial_scan = 'no'");
    pq.query("UPDATE serve_toast SET n = 1 WHERE id = 1");
    pq.query("UPDATE serve_toast SET other = 'short' WHERE id = 1");
    REQUIRE(wait_until([&] { return split(receiver.requests()).messages.size() >= 2; }));
    const auto row = pq.query("SELECT big FROM serve_toast").at(0);
    const delivery d = split(receiver.requests());
    REQUIRE(d.messages.size() == 2);
    for (const auto& m : d.messages) {
        auto message = proto::json::parse(m.text);
        REQUIRE(message);
        const proto::json* after = message->find("after");
        REQUIRE(after != nullptr);
        const proto::json* big = after->find("big");
        INFO(m.text.substr(0, 300));
        REQUIRE(big != nullptr);
        CHECK(big->text() == row.at(0));
        CHECK(after->find("other") != nullptr);
        CHECK(after->find("n") != nullptr);
    }
    pq.query("CANCEL JOB " + job);
    pq.query("DROP TABLE serve_toast");
}

// CockroachDB: a transaction committed before cluster_logical_timestamp() was read has a lower
// HLC, and a changefeed without a cursor starts at its statement time, so what committed before
// it is not sent. The stand-in decodes commits a moment later: neither may depend on that.
TEST_CASE_METHOD(feed_fixture,
                 "serve: what committed before a timestamp was read or a feed was created is "
                 "below it",
                 "[integration][serve]") {
    pq.query("DROP TABLE IF EXISTS serve_before");
    pq.query("CREATE TABLE serve_before (id INT8 PRIMARY KEY, v TEXT)");
    pq.query("SET CLUSTER SETTING kv.closed_timestamp.target_duration = '0s'");
    const std::string first = pq.query("SELECT cluster_logical_timestamp()").at(0).at(0);
    const std::string job =
        create("serve_before", "?",
               fmt::format("updated, resolved = '50ms', min_checkpoint_frequency = '50ms', "
                           "initial_scan = 'no', cursor = '{}'",
                           first));
    // Each row's commit, then a timestamp: the row's HLC must be below it.
    std::map<std::string, hlc> read_after;
    for (int i = 1; i <= 40; ++i) {
        pq.query(fmt::format("INSERT INTO serve_before VALUES ({}, 'v')", i));
        const std::string t = pq.query("SELECT cluster_logical_timestamp()").at(0).at(0);
        read_after[fmt::format("[{}]", i)] = hlc::parse(t).value();
        std::this_thread::sleep_for(std::chrono::milliseconds(i % 7));
    }
    REQUIRE(wait_until([&] { return split(receiver.requests()).messages.size() >= 40; }));
    for (const received_message& m : split(receiver.requests()).messages) {
        INFO(m.key << " at " << m.updated);
        CHECK(hlc::parse(m.updated).value() < read_after.at(m.key));
    }
    pq.query("CANCEL JOB " + job);
    // A feed without a cursor, created right after a commit, does not send it.
    for (int i = 41; i <= 60; ++i) {
        pq.query(fmt::format("INSERT INTO serve_before VALUES ({}, 'v')", i));
        const size_t before = receiver.requests().size();
        const std::string j = create("serve_before", "?",
                                     "updated, resolved = '50ms', min_checkpoint_frequency = "
                                     "'50ms', initial_scan = 'no'");
        // Once it has resolved a time after its creation, it has sent what it would have.
        const hlc after =
            hlc::parse(pq.query("SELECT cluster_logical_timestamp()").at(0).at(0)).value();
        REQUIRE(wait_until([&] {
            const delivery d = split(receiver.requests());
            return std::any_of(d.resolved.begin(), d.resolved.end(), [&](const auto& r) {
                return r.second >= before && !(r.first < after);
            });
        }));
        pq.query("CANCEL JOB " + j);
        for (const received_message& m : split(receiver.requests()).messages) {
            if (m.request >= before) {
                FAIL_CHECK("feed " << j << " sent " << m.key << ", committed before it");
            }
        }
    }
    pq.query("RESET CLUSTER SETTING kv.closed_timestamp.target_duration");
    pq.query("DROP TABLE serve_before");
}

// Resolved timestamps trail the rows by kv.closed_timestamp.target_duration and move only every
// kv.rangefeed.closed_timestamp_refresh_interval, as a rangefeed's closed timestamp does.
TEST_CASE_METHOD(feed_fixture, "serve: resolved timestamps trail the rows by the closed timestamp",
                 "[integration][serve]") {
    pq.query("DROP TABLE IF EXISTS serve_closed");
    pq.query("CREATE TABLE serve_closed (id INT8 PRIMARY KEY, v TEXT)");
    pq.query("SET CLUSTER SETTING kv.closed_timestamp.target_duration = '1500ms'");
    pq.query("SET CLUSTER SETTING kv.rangefeed.closed_timestamp_refresh_interval = '250ms'");
    CHECK(pq.failure("SET CLUSTER SETTING kv.closed_timestamp.target_duration = '-1s'").second ==
          "cannot be set to a negative duration: -1s");
    CHECK(pq.query("SHOW CLUSTER SETTING kv.closed_timestamp.target_duration").at(0).at(0) ==
          "00:00:01.5");
    const std::string job = create("serve_closed", "?",
                                   "updated, resolved = '50ms', min_checkpoint_frequency = '50ms', "
                                   "initial_scan = 'no'");
    pq.query("INSERT INTO serve_closed VALUES (1, 'v')");
    REQUIRE(wait_until([&] { return !split(receiver.requests()).messages.empty(); }));
    const hlc row = hlc::parse(split(receiver.requests()).messages.at(0).updated).value();
    auto covered = [&] {
        const delivery d = split(receiver.requests());
        return std::any_of(d.resolved.begin(), d.resolved.end(),
                           [&](const auto& r) { return !(r.first < row); });
    };
    // The row went out at once; until the wall clock is 1.5 s past it, nothing resolves it.
    while (wall_clock_nanos() < row.wall() + 1'400'000'000) {
        REQUIRE_FALSE(covered());
        std::this_thread::sleep_for(10ms);
    }
    REQUIRE(wait_until(covered));
    const delivery d = split(receiver.requests());
    for (size_t i = 1; i < d.resolved.size(); ++i) {
        INFO(d.resolved[i].first.to_string());
        CHECK(d.resolved[i].first.logical() == 0);
        CHECK(d.resolved[i].first.wall() % 250'000'000 == 0);
    }
    // A new setting applies to running feeds: with 0s, a row is resolved at once.
    pq.query("SET CLUSTER SETTING kv.closed_timestamp.target_duration = '0s'");
    pq.query("RESET CLUSTER SETTING kv.rangefeed.closed_timestamp_refresh_interval");
    pq.query("INSERT INTO serve_closed VALUES (2, 'v')");
    REQUIRE(wait_until([&] { return split(receiver.requests()).messages.size() >= 2; }));
    const hlc second = hlc::parse(split(receiver.requests()).messages.at(1).updated).value();
    REQUIRE(wait_until(
        [&] {
            const delivery e = split(receiver.requests());
            return !e.resolved.empty() && !(e.resolved.back().first < second);
        },
        1s));
    pq.query("CANCEL JOB " + job);
    pq.query("RESET CLUSTER SETTING kv.closed_timestamp.target_duration");
    pq.query("DROP TABLE serve_closed");
}
