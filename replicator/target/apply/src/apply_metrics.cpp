#include "molt/replicator/target/apply_metrics.hpp"

#include "molt/common/log.hpp"

namespace molt::replicator {

apply_metrics::apply_metrics(metrics::registry& registry)
    : upserts_(registry.counter("apply_upserts_total", "Rows upserted into the target, per table",
                                {"schema", "table"})),
      deletes_(registry.counter("apply_deletes_total", "Rows deleted from the target, per table",
                                {"schema", "table"})),
      retries_(registry.counter("apply_retries_total", "Target transactions retried, by reason",
                                {"schema", "reason"})),
      duration_(registry.histogram("apply_duration_seconds",
                                   "Time to apply one request (immediate mode) or one target "
                                   "transaction (consistent mode)",
                                   {"schema"})) {}

void apply_metrics::applied(const std::string& schema, const apply_plan& plan,
                            double elapsed_seconds) {
    duration_.with({schema}).observe(elapsed_seconds);
    for (const table_counts& t : plan.tables) {
        upserts_.with({schema, t.table->name}).add(t.upserts);
        deletes_.with({schema, t.table->name}).add(t.deletes);
        if (t.upserts > 0) {
            log::debug()
                .str("target", t.table->qualified.to_string())
                .unum("upserted", t.upserts)
                .unum("proposed", t.received)
                .dbl("duration_ms", elapsed_seconds * 1e3)
                .msg("upserted rows");
        }
        if (t.deletes > 0) {
            log::debug()
                .str("target", t.table->qualified.to_string())
                .unum("applied", t.deletes)
                .unum("proposed", t.received)
                .msg("deleted rows");
        }
    }
}

void apply_metrics::retried(const std::string& schema, retry_class why) {
    retries_.with({schema, std::string(to_string(why))}).add();
}

}  // namespace molt::replicator
