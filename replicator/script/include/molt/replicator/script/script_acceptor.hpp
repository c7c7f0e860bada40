#pragma once
// The acceptor in front of the applier when a userscript is loaded: a request's rows go through
// the script's schema-level handlers (configureTargetSchema) before they are staged or applied,
// and in immediate mode through its table-level handlers (configureTargetTables) too, since
// that mode applies in the request. Rows the script drops are acknowledged with the request;
// a request left without rows never reaches the applier.

#include <chrono>

#include "molt/replicator/core/acceptor.hpp"
#include "molt/replicator/script/userscript.hpp"
#include "molt/replicator/target/schema_cache.hpp"

namespace molt::replicator::script {

class script_acceptor final : public mutation_acceptor {
public:
    /// `timeout`: how long a request may wait for the target schema's snapshot.
    script_acceptor(mutation_acceptor& inner, const userscript& script, schema_cache& schemas,
                    bool immediate, std::chrono::nanoseconds timeout)
        : inner_(inner),
          script_(script),
          schemas_(schemas),
          immediate_(immediate),
          timeout_(timeout) {}

    result<accept_stats> accept_rows(const qualified_name& schema, const proto::batch& rows,
                                     const request_context& context) override;
    result<void> accept_resolved(const qualified_name& schema, hlc resolved) override {
        return inner_.accept_resolved(schema, resolved);
    }

private:
    mutation_acceptor& inner_;
    const userscript& script_;
    schema_cache& schemas_;
    bool immediate_;
    std::chrono::nanoseconds timeout_;
};

}  // namespace molt::replicator::script
