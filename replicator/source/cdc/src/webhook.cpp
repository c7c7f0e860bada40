#include "molt/replicator/source/webhook.hpp"

#include <fmt/format.h>

#include "molt/common/log.hpp"
#include "molt/common/percent.hpp"

namespace molt::replicator {
namespace {

std::string_view expected_form(dialect d) {
    switch (d) {
    case dialect::postgres: return "/<database>/<schema>, e.g. /defaultdb/public";
    case dialect::mysql: return "/<database>, e.g. /molt";
    case dialect::oracle: return "/<SCHEMA>, e.g. /MIGRATION_SCHEMA";
    }
    return "";
}

size_t schema_segments(dialect d) {
    return d == dialect::postgres ? 2 : 1;
}

}  // namespace

result<qualified_name> parse_webhook_path(std::string_view target, dialect target_dialect) {
    const std::string_view path = target.substr(0, target.find('?'));
    const std::string hint = fmt::format(
        "{} targets take the path {}", display_name(target_dialect), expected_form(target_dialect));
    qualified_name out;
    size_t pos = 0;
    while (pos <= path.size()) {
        const size_t slash = std::min(path.find('/', pos), path.size());
        const std::string_view segment = path.substr(pos, slash - pos);
        pos = slash + 1;
        if (segment.empty()) {
            continue;
        }
        if (out.parts.size() == 8) {
            return error{errc::not_found, fmt::format("request path exceeds the maximum of 8 "
                                                      "segments; {}",
                                                      hint)};
        }
        auto decoded = percent_decode(segment, "request path", true);
        if (!decoded) {
            return error{errc::not_found, decoded.error().message() + "; " + hint};
        }
        out.parts.push_back(std::move(decoded).value());
    }
    const size_t n = schema_segments(target_dialect);
    if (out.parts.size() == n) {
        return out;
    }
    if (out.parts.size() == n + 1) {
        return error{errc::not_found,
                     fmt::format("path \"{}\" names a table: CDC-query feeds are not supported "
                                 "yet; {}",
                                 log::sanitize(path), hint)};
    }
    return error{errc::not_found, fmt::format("path \"{}\" does not name a target schema; {}",
                                              log::sanitize(path), hint)};
}

result<webhook_outcome> handle_webhook(mutation_acceptor& acceptor, const qualified_name& schema,
                                       std::string body, const proto::decode_limits& limits,
                                       const request_context& context) {
    auto decoded = proto::decode_webhook(std::move(body), limits);
    if (!decoded) {
        return std::move(decoded).error();
    }
    webhook_outcome out;
    if (decoded->type == proto::webhook_body::kind::resolved) {
        out.resolved = true;
        if (auto accepted = acceptor.accept_resolved(schema, decoded->resolved); !accepted) {
            return accepted.error();
        }
        return out;
    }
    out.messages = decoded->rows.message_count();
    if (out.messages == 0) {
        return out;
    }
    if (decoded->rows.unknown_field_count() > 0) {
        log::debug()
            .unum("fields", decoded->rows.unknown_field_count())
            .msg("request carries fields this replicator does not use; ignored");
    }
    auto accepted = acceptor.accept_rows(schema, decoded->rows, context);
    if (!accepted) {
        return std::move(accepted).error();
    }
    out.stats = *accepted;
    return out;
}

}  // namespace molt::replicator
