// The pgwire codec against a real PostgreSQL 15: what it frames, the server understands, and
// what the server sends, it frames.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include <catch2/catch.hpp>

#include "molt/common/conn_url.hpp"
#include "molt/emulator/pgwire.hpp"
#include "molt/test/servers.hpp"

using namespace molt;
using namespace molt::emulator::pgwire;

namespace {

// A blocking TCP connection to 127.0.0.1:port, closed on scope exit.
struct connection {
    explicit connection(uint16_t port) {
        fd = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd >= 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        timeval timeout{10, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    }
    ~connection() { ::close(fd); }
    void send(const std::string& bytes) const {
        REQUIRE(::send(fd, bytes.data(), bytes.size(), 0) == static_cast<ssize_t>(bytes.size()));
    }
    /// The next frame from the server (after the startup phase).
    message receive() {
        for (;;) {
            auto m = reader.next();
            REQUIRE(m);
            if (*m) {
                return std::move(**m);
            }
            char buf[4096];
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            REQUIRE(n > 0);
            reader.feed(std::string_view(buf, static_cast<size_t>(n)));
        }
    }
    int fd = -1;
    frame_reader reader{false};
};

}  // namespace

TEST_CASE("pgwire against PostgreSQL: SSLRequest, startup, an error without a user",
          "[integration][pgwire]") {
    const conn_url url = conn_url::parse(test::server_url("MOLT_TEST_PG_URL")).value();
    {
        // SSLRequest: the server answers one byte, 'S' when it offers TLS (the servers of
        // db-up.sh do, with MOLT_TEST_TLS_DIR), else 'N'.
        const char* tls = std::getenv("MOLT_TEST_TLS_DIR");
        connection c(url.port_or_default());
        c.send(frame('\0', std::string("\x04\xd2\x16\x2f", 4)));
        char answer = 0;
        REQUIRE(::recv(c.fd, &answer, 1, 0) == 1);
        CHECK(answer == (tls != nullptr && *tls != '\0' ? 'S' : 'N'));
    }
    {
        // A v3 startup for the app user: the server asks for SCRAM (AuthenticationSASL, code 10).
        connection c(url.port_or_default());
        c.send(frame('\0', startup_body({{"user", "app"}, {"database", "appdb"}})));
        const message auth = c.receive();
        CHECK(auth.type == 'R');
        REQUIRE(auth.body.size() >= 4);
        CHECK(auth.body.substr(0, 4) == std::string("\0\0\0\x0a", 4));
        CHECK(auth.body.find("SCRAM-SHA-256") != std::string::npos);
    }
    {
        // No user: PostgreSQL refuses at once, with an ErrorResponse (SQLSTATE 28000).
        connection c(url.port_or_default());
        c.send(frame('\0', startup_body({{"database", "appdb"}})));
        const message e = c.receive();
        CHECK(e.type == 'E');
        CHECK(e.body.find(std::string("C28000\0", 7)) != std::string::npos);
    }
}
