#include "molt/replicator/script/script_acceptor.hpp"

namespace molt::replicator::script {

result<accept_stats> script_acceptor::accept_rows(const qualified_name& schema,
                                                  const proto::batch& rows,
                                                  const request_context& context) {
    unsigned which = script_.handles_schema(schema) ? unsigned{schema_phase} : 0U;
    if (immediate_ && script_.handles_tables(schema)) {
        which |= table_phase;
    }
    if (which == 0) {
        return inner_.accept_rows(schema, rows, context);
    }
    const auto deadline = context.arrived + timeout_;
    auto snapshot = schemas_.get(schema, deadline);
    if (!snapshot) {
        return snapshot.error();
    }
    auto changed = script_.run(schema, **snapshot, rows, which, deadline);
    if (!changed) {
        return changed.error();
    }
    if (changed->empty()) {
        return accept_stats{};
    }
    return inner_.accept_rows(schema, *changed, context);
}

}  // namespace molt::replicator::script
