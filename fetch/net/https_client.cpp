#include "molt/fetch/https_client.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "molt/common/hex.hpp"

#include "net/openssl_ptr.hpp"

namespace molt::fetch {
namespace {

using clock = std::chrono::steady_clock;

constexpr size_t io_chunk = 16 * 1024;
constexpr size_t max_header_line = 64 * 1024;
constexpr size_t max_header_lines = 200;

/// The first reason on OpenSSL's error queue (no key material: reasons are fixed strings).
std::string openssl_reason() {
    const unsigned long code = ERR_peek_error();
    ERR_clear_error();
    if (code == 0) {
        return {};
    }
    const char* reason = ERR_reason_error_string(code);
    return reason != nullptr ? reason : fmt::format("OpenSSL error {:#x}", code);
}

/// Never asks for a passphrase (OpenSSL's default would prompt on the terminal).
int no_passphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) {
    return 0;
}

bool is_ip_literal(const std::string& host) {
    unsigned char buf[sizeof(in6_addr)];
    return inet_pton(AF_INET, host.c_str(), buf) == 1 ||
           inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

/// What every step shares: the deadline and how errors name the request.
struct request_context {
    std::string where;  ///< "GET https://127.0.0.1:30004/_/healthz"
    clock::time_point deadline;
    std::chrono::milliseconds timeout;

    [[nodiscard]] error fail(errc code, std::string_view step, std::string_view detail) const {
        return error{code, fmt::format("{}: {}: {}", where, step, detail)};
    }

    /// Waits until `fd` is ready for `events`, or fails with a timeout at the deadline.
    [[nodiscard]] result<void> wait(int fd, short events, std::string_view step) const {
        for (;;) {
            const auto left =
                std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
            if (left <= 0) {
                return fail(errc::timeout, step,
                            fmt::format("timed out after {} ms", timeout.count()));
            }
            pollfd p{fd, events, 0};
            const int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 60'000)));
            if (n > 0) {
                return ok();  // readiness or an error condition: the next call reports which
            }
            if (n < 0 && errno != EINTR) {
                return fail(errc::io_error, step, std::strerror(errno));
            }
        }
    }
};

/// One TCP connection, optionally with TLS. TLS runs over memory BIOs so that every socket
/// operation is ours: non-blocking, bounded by the deadline, and sent with MSG_NOSIGNAL.
class connection {
public:
    explicit connection(const request_context& cx) : cx_(cx) {}
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    ~connection() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }

    result<void> open(const std::string& host, uint16_t port);
    result<void> start_tls(const http_target& target, const std::string& host);
    result<void> write_all(std::string_view data, std::string_view step);
    /// Some bytes of the response; 0 when the server has closed the connection.
    result<size_t> read_some(char* out, size_t n, std::string_view step);

private:
    result<void> connect_one(const addrinfo& ai);
    result<void> send_raw(const char* data, size_t n, std::string_view step);
    result<size_t> recv_raw(char* out, size_t n, std::string_view step);
    result<void> flush_tls(std::string_view step);
    template <typename Op>
    result<int> drive(Op op, std::string_view step);
    std::string tls_failure() const;

    const request_context& cx_;
    int fd_ = -1;
    ssl_ctx_ptr ctx_;
    ssl_ptr ssl_;
    BIO* rbio_ = nullptr;  // owned by ssl_: bytes from the server
    BIO* wbio_ = nullptr;  // owned by ssl_: bytes for the server
    bool peer_closed_ = false;
};

result<void> connection::connect_one(const addrinfo& ai) {
    fd_ = ::socket(ai.ai_family, ai.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai.ai_protocol);
    if (fd_ < 0) {
        return cx_.fail(errc::io_error, "connect", std::strerror(errno));
    }
    if (::connect(fd_, ai.ai_addr, ai.ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            return cx_.fail(errc::unavailable, "connect", std::strerror(errno));
        }
        if (auto w = cx_.wait(fd_, POLLOUT, "connect"); !w) {
            return w.error();
        }
        int so_error = 0;
        socklen_t len = sizeof so_error;
        ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &so_error, &len);
        if (so_error != 0) {
            return cx_.fail(errc::unavailable, "connect", std::strerror(so_error));
        }
    }
    return ok();
}

result<void> connection::open(const std::string& host, uint16_t port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    // Numeric hosts never touch the resolver. Names go through getaddrinfo, which the deadline
    // cannot interrupt; molt's targets are loopback names or addresses.
    hints.ai_flags = AI_NUMERICSERV | (is_ip_literal(host) ? AI_NUMERICHOST : 0);
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
        return cx_.fail(errc::unavailable, "resolve", ::gai_strerror(rc));
    }
    std::unique_ptr<addrinfo, openssl_deleter<addrinfo, freeaddrinfo>> list(found);
    result<void> last = cx_.fail(errc::unavailable, "connect", "no address");
    for (const addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
        last = connect_one(*ai);
        if (last || last.error().code() == errc::timeout) {
            return last;
        }
        ::close(fd_);
        fd_ = -1;
    }
    return last;
}

result<void> connection::send_raw(const char* data, size_t n, std::string_view step) {
    while (n > 0) {
        const ssize_t sent = ::send(fd_, data, n, MSG_NOSIGNAL);
        if (sent >= 0) {
            data += sent;
            n -= static_cast<size_t>(sent);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (auto w = cx_.wait(fd_, POLLOUT, step); !w) {
                return w.error();
            }
        } else if (errno != EINTR) {
            return cx_.fail(errc::unavailable, step, std::strerror(errno));
        }
    }
    return ok();
}

result<size_t> connection::recv_raw(char* out, size_t n, std::string_view step) {
    for (;;) {
        const ssize_t got = ::recv(fd_, out, n, 0);
        if (got >= 0) {
            return static_cast<size_t>(got);
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (auto w = cx_.wait(fd_, POLLIN, step); !w) {
                return w.error();
            }
        } else if (errno != EINTR) {
            return cx_.fail(errc::unavailable, step, std::strerror(errno));
        }
    }
}

result<void> connection::flush_tls(std::string_view step) {
    char buf[io_chunk];
    while (BIO_ctrl_pending(wbio_) > 0) {
        const int n = BIO_read(wbio_, buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        if (auto s = send_raw(buf, static_cast<size_t>(n), step); !s) {
            return s;
        }
    }
    return ok();
}

std::string connection::tls_failure() const {
    const long verify = SSL_get_verify_result(ssl_.get());
    if (verify != X509_V_OK) {
        ERR_clear_error();
        return fmt::format("certificate verify failed: {}", X509_verify_cert_error_string(verify));
    }
    std::string reason = openssl_reason();
    if (!reason.empty()) {
        return reason;
    }
    return peer_closed_ ? "the server closed the connection" : "TLS failure";
}

/// Runs an SSL operation to completion: moves bytes between the socket and the BIOs until it
/// succeeds (> 0), the peer closes the TLS session (0), or it fails.
template <typename Op>
result<int> connection::drive(Op op, std::string_view step) {
    for (;;) {
        ERR_clear_error();
        const int r = op();
        const int err = r > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_.get(), r);
        if (auto f = flush_tls(step); !f) {
            return f.error();
        }
        switch (err) {
        case SSL_ERROR_NONE: return r;
        case SSL_ERROR_ZERO_RETURN: return 0;
        case SSL_ERROR_WANT_WRITE: break;  // flushed above
        case SSL_ERROR_WANT_READ: {
            if (peer_closed_) {
                return 0;
            }
            char buf[io_chunk];
            auto got = recv_raw(buf, sizeof buf, step);
            if (!got) {
                return std::move(got).error();
            }
            if (*got == 0) {
                peer_closed_ = true;
                BIO_set_mem_eof_return(rbio_, 0);
            } else {
                BIO_write(rbio_, buf, static_cast<int>(*got));
            }
            break;
        }
        default: return cx_.fail(errc::tls_error, step, tls_failure());
        }
    }
}

result<void> connection::start_tls(const http_target& target, const std::string& host) {
    auto setup = [&](std::string_view detail) {
        return cx_.fail(errc::tls_error, "TLS setup", detail);
    };
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    if (!ctx_) {
        return setup(openssl_reason());
    }
    SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_2_VERSION);
    // Framing (Content-Length, chunked) tells a complete body from a cut one; a missing
    // close_notify alone is not an error (Go servers often omit it).
    SSL_CTX_set_options(ctx_.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (!target.ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(ctx_.get(), target.ca_file.c_str(), nullptr) != 1) {
            return setup(fmt::format("cannot load the CA file \"{}\": {}", target.ca_file,
                                     openssl_reason()));
        }
        SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
    } else {
        SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_NONE, nullptr);
    }
    if (!target.client_cert_pem.empty() || !target.client_key_pem.empty()) {
        bio_ptr cert_bio(BIO_new_mem_buf(target.client_cert_pem.data(),
                                         static_cast<int>(target.client_cert_pem.size())));
        x509_ptr leaf(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
        if (!leaf || SSL_CTX_use_certificate(ctx_.get(), leaf.get()) != 1) {
            ERR_clear_error();
            return setup("the client certificate is not a PEM certificate");
        }
        while (X509* extra = PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr)) {
            SSL_CTX_add0_chain_cert(ctx_.get(), extra);  // intermediates, sent after the leaf
        }
        ERR_clear_error();  // the end of the PEM text
        bio_ptr key_bio(BIO_new_mem_buf(target.client_key_pem.data(),
                                        static_cast<int>(target.client_key_pem.size())));
        evp_key_ptr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, no_passphrase, nullptr));
        if (!key) {
            ERR_clear_error();
            return setup("the client key is not an unencrypted PEM private key");
        }
        // SSL_CTX_use_PrivateKey itself refuses a key that does not fit the certificate.
        if (SSL_CTX_use_PrivateKey(ctx_.get(), key.get()) != 1 ||
            SSL_CTX_check_private_key(ctx_.get()) != 1) {
            ERR_clear_error();
            return setup("the client key does not match the client certificate");
        }
    }
    ssl_.reset(SSL_new(ctx_.get()));
    rbio_ = BIO_new(BIO_s_mem());
    wbio_ = BIO_new(BIO_s_mem());
    if (!ssl_ || rbio_ == nullptr || wbio_ == nullptr) {
        BIO_free(rbio_);
        BIO_free(wbio_);
        rbio_ = wbio_ = nullptr;
        return setup(openssl_reason());
    }
    BIO_set_mem_eof_return(rbio_, -1);  // empty means "wait for more", not end of stream
    SSL_set_bio(ssl_.get(), rbio_, wbio_);
    const bool ip = is_ip_literal(host);
    if (!ip) {
        // SNI carries names only (SSL_set_tlsext_host_name, without the macro's C cast).
        SSL_ctrl(ssl_.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(host.c_str()));
    }
    if (!target.ca_file.empty()) {
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl_.get());
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        const int set = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                           : X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
        if (set != 1) {
            return setup(fmt::format("cannot verify the host \"{}\"", host));
        }
    }
    auto done = drive([&] { return SSL_connect(ssl_.get()); }, "TLS handshake");
    if (!done) {
        return std::move(done).error();
    }
    if (*done == 0) {
        return cx_.fail(errc::tls_error, "TLS handshake", "the server closed the connection");
    }
    return ok();
}

result<void> connection::write_all(std::string_view data, std::string_view step) {
    if (!ssl_) {
        return send_raw(data.data(), data.size(), step);
    }
    while (!data.empty()) {
        const int chunk = static_cast<int>(std::min(data.size(), io_chunk));
        auto n = drive([&] { return SSL_write(ssl_.get(), data.data(), chunk); }, step);
        if (!n) {
            return std::move(n).error();
        }
        if (*n == 0) {
            return cx_.fail(errc::unavailable, step, "the server closed the connection");
        }
        data.remove_prefix(static_cast<size_t>(*n));
    }
    return ok();
}

result<size_t> connection::read_some(char* out, size_t n, std::string_view step) {
    if (!ssl_) {
        return recv_raw(out, n, step);
    }
    const int want = static_cast<int>(std::min(n, io_chunk));
    auto got = drive([&] { return SSL_read(ssl_.get(), out, want); }, step);
    if (!got) {
        return std::move(got).error();
    }
    return static_cast<size_t>(*got);
}

/// Reads one HTTP/1.x response: status line, headers, then a body framed by
/// Transfer-Encoding: chunked, Content-Length, or the end of the connection.
class response_reader {
public:
    response_reader(connection& conn, const request_context& cx, size_t max_body)
        : conn_(conn), cx_(cx), max_body_(max_body) {}

    result<http_reply> read();

private:
    static constexpr std::string_view step_ = "read response";

    result<bool> fill();
    result<std::string> line();
    result<void> take(size_t n, std::string& body);
    result<void> read_chunked(std::string& body);
    result<void> read_to_close(std::string& body);
    error bad(std::string_view what) const { return cx_.fail(errc::parse_error, step_, what); }
    error too_big() const {
        return cx_.fail(errc::limit_exceeded, step_,
                        fmt::format("the body exceeds {} bytes", max_body_));
    }

    connection& conn_;
    const request_context& cx_;
    size_t max_body_;
    std::string buf_;
    size_t pos_ = 0;
};

result<bool> response_reader::fill() {
    if (pos_ > 0 && pos_ == buf_.size()) {
        buf_.clear();
        pos_ = 0;
    }
    char tmp[io_chunk];
    auto n = conn_.read_some(tmp, sizeof tmp, step_);
    if (!n) {
        return std::move(n).error();
    }
    buf_.append(tmp, *n);
    return *n > 0;
}

result<std::string> response_reader::line() {
    for (;;) {
        const size_t nl = buf_.find('\n', pos_);
        if (nl != std::string::npos) {
            std::string out = buf_.substr(pos_, nl - pos_);
            pos_ = nl + 1;
            if (!out.empty() && out.back() == '\r') {
                out.pop_back();
            }
            return out;
        }
        if (buf_.size() - pos_ > max_header_line) {
            return bad("a header line is too long");
        }
        auto more = fill();
        if (!more) {
            return std::move(more).error();
        }
        if (!*more) {
            return bad("the server closed the connection before the response was complete");
        }
    }
}

result<void> response_reader::take(size_t n, std::string& body) {
    while (buf_.size() - pos_ < n) {
        auto more = fill();
        if (!more) {
            return std::move(more).error();
        }
        if (!*more) {
            return bad("the server closed the connection before the body was complete");
        }
    }
    body.append(buf_, pos_, n);
    pos_ += n;
    return ok();
}

result<void> response_reader::read_chunked(std::string& body) {
    for (;;) {
        auto size_line = line();
        if (!size_line) {
            return std::move(size_line).error();
        }
        const std::string_view text = std::string_view(*size_line).substr(0, size_line->find(';'));
        size_t size = 0;
        size_t digits = 0;
        for (const char c : text) {
            const int v = hex_value(c);
            if (v < 0) {
                break;
            }
            if (size > (max_body_ >> 4)) {
                return too_big();
            }
            size = size * 16 + static_cast<size_t>(v);
            ++digits;
        }
        if (digits == 0) {
            return bad("a chunk size is not hexadecimal");
        }
        if (size == 0) {
            break;
        }
        if (size > max_body_ - body.size()) {
            return too_big();
        }
        if (auto t = take(size, body); !t) {
            return t;
        }
        auto end = line();
        if (!end) {
            return std::move(end).error();
        }
        if (!end->empty()) {
            return bad("a chunk does not end with CRLF");
        }
    }
    for (size_t i = 0;; ++i) {  // trailers, ignored
        auto trailer = line();
        if (!trailer) {
            return std::move(trailer).error();
        }
        if (trailer->empty()) {
            return ok();
        }
        if (i > max_header_lines) {
            return bad("too many trailer lines");
        }
    }
}

result<void> response_reader::read_to_close(std::string& body) {
    for (;;) {
        const size_t have = buf_.size() - pos_;
        if (have > max_body_ - body.size()) {
            return too_big();
        }
        body.append(buf_, pos_, have);
        pos_ = buf_.size();
        auto more = fill();
        if (!more) {
            return std::move(more).error();
        }
        if (!*more) {
            return ok();
        }
    }
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

result<http_reply> response_reader::read() {
    http_reply reply;
    std::optional<size_t> content_length;
    bool chunked = false;
    do {  // 1xx interim responses are skipped
        auto status = line();
        if (!status) {
            return std::move(status).error();
        }
        const std::string_view s = *status;
        if (s.size() < 12 || s.substr(0, 7) != "HTTP/1." || s[8] != ' ' ||
            !std::all_of(s.begin() + 9, s.begin() + 12,
                         [](char c) { return c >= '0' && c <= '9'; }) ||
            (s.size() > 12 && s[12] != ' ')) {
            return bad("the status line is not HTTP/1.x");
        }
        reply.status = std::stoi(std::string(s.substr(9, 3)));
        content_length.reset();
        chunked = false;
        for (size_t i = 0;; ++i) {
            auto header = line();
            if (!header) {
                return std::move(header).error();
            }
            if (header->empty()) {
                break;
            }
            const size_t colon = header->find(':');
            if (colon == std::string::npos || colon == 0 || i > max_header_lines) {
                return bad("malformed response headers");
            }
            const std::string name = lower(std::string_view(*header).substr(0, colon));
            const std::string_view value = trim(std::string_view(*header).substr(colon + 1));
            if (name == "transfer-encoding") {
                chunked = lower(value).ends_with("chunked");
            } else if (name == "content-length") {
                if (value.empty() || value.size() > 19 ||
                    !std::all_of(value.begin(), value.end(),
                                 [](char c) { return c >= '0' && c <= '9'; })) {
                    return bad("Content-Length is not a number");
                }
                const size_t n = std::stoull(std::string(value));
                if (content_length && *content_length != n) {
                    return bad("conflicting Content-Length headers");
                }
                content_length = n;
            }
        }
    } while (reply.status >= 100 && reply.status < 200);
    if (reply.status == 204 || reply.status == 304) {
        return reply;
    }
    if (chunked) {
        if (auto r = read_chunked(reply.body); !r) {
            return r.error();
        }
    } else if (content_length) {
        if (*content_length > max_body_) {
            return too_big();
        }
        if (auto r = take(*content_length, reply.body); !r) {
            return r.error();
        }
    } else if (auto r = read_to_close(reply.body); !r) {
        return r.error();
    }
    return reply;
}

}  // namespace

result<http_reply> http_get(const http_target& target, const std::string& path,
                            std::chrono::milliseconds timeout, size_t max_body) {
    std::string host = target.host;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    if (host.empty() || host == "0.0.0.0") {
        host = "127.0.0.1";  // a listen address for every interface: reach it over loopback
    } else if (host == "::") {
        host = "::1";
    }
    const std::string host_port = host.find(':') != std::string::npos
                                      ? fmt::format("[{}]:{}", host, target.port)
                                      : fmt::format("{}:{}", host, target.port);
    const request_context cx{
        fmt::format("GET {}://{}{}", target.tls ? "https" : "http", host_port, path),
        clock::now() + timeout, timeout};
    if (path.empty() || path.front() != '/' || path.find_first_of("\r\n ") != std::string::npos) {
        return cx.fail(errc::invalid_argument, "request", "the path must start with '/'");
    }
    ERR_clear_error();
    connection conn(cx);
    if (auto r = conn.open(host, target.port); !r) {
        return r.error();
    }
    if (target.tls) {
        if (auto r = conn.start_tls(target, host); !r) {
            return r.error();
        }
    }
    const std::string request = fmt::format(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: molt\r\nAccept: */*\r\n"
        "Connection: close\r\n\r\n",
        path, host_port);
    if (auto r = conn.write_all(request, "write request"); !r) {
        return r.error();
    }
    return response_reader(conn, cx, max_body).read();
}

}  // namespace molt::fetch
