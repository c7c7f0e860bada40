// `replicator make-jwt`: signs a token for the webhook, as cockroachdb/replicator's make-jwt
// (replicator.md §5), and says what to do with it.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "molt/common/exit_code.hpp"
#include "molt/common/log.hpp"
#include "molt/replicator/app/application.hpp"
#include "molt/replicator/server/jwt.hpp"

namespace molt::replicator {
namespace {

constexpr std::string_view make_jwt_help =
    R"(Make a JSON Web Token that lets a changefeed write to the listed schemas.

The token goes to stdout (or --out); what to do next goes to stderr: the INSERT that installs the
public key in the staging schema, and the changefeed option that sends the token.

Usage:
  replicator make-jwt -k key.pem -a db.schema [-a db.schema ...] [-o token.jwt]
  replicator make-jwt --claim -a db.schema [-a ...]

Flags:
  -a, --allow strings        a schema the token may write: db.schema (PostgreSQL, CockroachDB) or
                             db (MySQL); "*" matches any one part; repeat for several
      --claim                print the claims of such a token as JSON, unsigned, for an external
                             identity provider to sign (no key needed)
  -h, --help                 help for make-jwt
  -k, --key string           the private key, PEM (PKCS#8, EC or RSA, unencrypted): EC keys sign
                             with ES256/ES384/ES512 by curve, RSA keys (2048 bits or more)
                             with RS256
  -o, --out string           write the token to this file (mode 0600) instead of stdout
      --stagingSchema string the replicator's --stagingSchema, for the INSERT printed (default
                             "_replicator.public")

Example (key pair with openssl):
  openssl ecparam -genkey -name prime256v1 -noout -out jwt.key
  replicator make-jwt -k jwt.key -a appdb.public -o appdb.jwt
)";

int failed(std::ostream& err, std::string_view message) {
    err << "Error: " << message << "\n";
    return to_int(exit_code::failure);
}

// Writes a secret file readable by its owner only: a new file (mode 0600) next to it, renamed
// over it once complete, so a failed write never leaves a truncated token where one was.
result<void> write_private(const std::string& path, std::string_view text) {
    std::string temporary = path + ".XXXXXX";
    const int fd = ::mkostemp(temporary.data(), O_CLOEXEC);  // mode 0600
    if (fd < 0) {
        return error{errc::io_error, fmt::format("--out: cannot create \"{}\": {}", temporary,
                                                 std::strerror(errno))};
    }
    auto failure = [&](int saved) {
        ::close(fd);
        ::unlink(temporary.c_str());
        return error{errc::io_error, fmt::format("--out: cannot write \"{}\": {}", temporary,
                                                 std::strerror(saved))};
    };
    size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return failure(errno);
        }
        done += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0) {
        return failure(errno);
    }
    if (::close(fd) != 0 || ::rename(temporary.c_str(), path.c_str()) != 0) {
        const int saved = errno;
        ::unlink(temporary.c_str());
        return error{errc::io_error,
                     fmt::format("--out: cannot write \"{}\": {}", path, std::strerror(saved))};
    }
    return {};
}

// Where the INSERT goes: "_replicator.jwt_public_keys" names the default staging schema on
// CockroachDB (database _replicator, schema public) and on PostgreSQL (schema _replicator).
std::string keys_table(std::string_view staging_schema) {
    if (staging_schema == "_replicator.public") {
        return "_replicator.jwt_public_keys";
    }
    return fmt::format("{}.jwt_public_keys", staging_schema);
}

}  // namespace

int run_make_jwt(const std::vector<std::string_view>& args, std::ostream& out, std::ostream& err) {
    std::string key_file;
    std::string out_file;
    std::string staging_schema = "_replicator.public";
    bool claim_only = false;
    jwt::schema_list allowed;
    std::vector<std::string> allowed_text;
    for (size_t i = 0; i < args.size(); ++i) {
        std::string_view arg = args[i];
        std::string_view value;
        bool inline_value = false;
        if (const size_t eq = arg.find('=');
            arg.rfind("--", 0) == 0 && eq != std::string_view::npos) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
            inline_value = true;
        }
        auto next = [&](std::string_view name) -> std::optional<std::string> {
            if (inline_value) {
                return std::string(value);
            }
            if (i + 1 >= args.size()) {
                failed(err, fmt::format("flag needs an argument: {}", name));
                return std::nullopt;
            }
            return std::string(args[++i]);
        };
        if (arg == "-h" || arg == "--help") {
            out << make_jwt_help;
            return to_int(exit_code::ok);
        }
        if (arg == "--claim") {
            claim_only = true;
            continue;
        }
        // The flags that take a value: where it goes (--allow: parsed below).
        std::string* into = arg == "-k" || arg == "--key"   ? &key_file
                            : arg == "-o" || arg == "--out" ? &out_file
                            : arg == "--stagingSchema"      ? &staging_schema
                                                            : nullptr;
        const bool allow = arg == "-a" || arg == "--allow";
        if (into != nullptr || allow) {
            auto v = next(arg);
            if (!v) {
                return to_int(exit_code::failure);
            }
            if (into != nullptr) {
                *into = *v;
                continue;
            }
            auto parts = jwt::parse_allowed(*v);
            if (!parts) {
                return failed(err, log::sanitize(parts.error().message()));
            }
            allowed.push_back(std::move(parts).value());
            allowed_text.push_back(*v);
        } else {
            return failed(err, fmt::format("unknown flag: {}\nRun 'replicator make-jwt --help' "
                                           "for usage.",
                                           log::sanitize(arg)));
        }
    }
    if (allowed.empty()) {
        return failed(err,
                      "at least one --allow db.schema is required: the schemas the token may "
                      "write to");
    }
    if (claim_only) {
        out << jwt::claims_json(allowed, jwt::random_id()) << "\n";
        return to_int(exit_code::ok);
    }
    if (key_file.empty()) {
        return failed(err, "--key is required: the PEM private key that signs the token");
    }
    std::ifstream in(key_file, std::ios::binary);
    std::stringstream pem;
    pem << in.rdbuf();
    if (!in) {
        return failed(err, fmt::format("--key: cannot read \"{}\"", log::sanitize(key_file)));
    }
    auto made = jwt::make_token(pem.str(), allowed);
    if (!made) {
        return failed(
            err, fmt::format("--key \"{}\": {}", log::sanitize(key_file), made.error().message()));
    }
    if (out_file.empty()) {
        out << made->token << "\n";
    } else if (auto written = write_private(out_file, made->token + "\n"); !written) {
        return failed(err, written.error().message());
    }
    std::string schemas;
    for (const auto& text : allowed_text) {
        schemas += (schemas.empty() ? "" : ", ") + text;
    }
    err << fmt::format(
        "Made a token signed with {} (jti {}) allowing {}{}.\n\n"
        "1. Install its public key in the staging database, then send SIGHUP to the replicator "
        "(or wait --jwtRefresh, 1m):\n\n"
        "INSERT INTO {} (public_key) VALUES ('{}');\n\n"
        "2. Send the token with every changefeed request:\n\n"
        "CREATE CHANGEFEED ... INTO 'webhook-https://...' WITH webhook_auth_header = 'Bearer "
        "<the token>';\n\n"
        "To revoke it: INSERT INTO {} (id) VALUES ('{}');\n",
        made->algorithm, made->id, schemas,
        out_file.empty() ? "" : fmt::format(", written to {}", out_file),
        keys_table(staging_schema), made->public_key_pem,
        keys_table(staging_schema)
            .replace(keys_table(staging_schema).size() - std::string_view("jwt_public_keys").size(),
                     std::string::npos, "jwt_revoked_ids"),
        made->id);
    return to_int(exit_code::ok);
}

}  // namespace molt::replicator
