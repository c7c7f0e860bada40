#pragma once
// The apply metrics both modes share, and the debug lines the original writes after a commit:
//   apply_upserts_total / apply_deletes_total {schema,table}   rows written
//   apply_retries_total {schema,reason}                        target transactions retried
//   apply_duration_seconds {schema}                            one commit: a request (immediate
//                                                              mode) or a target transaction
//                                                              (consistent mode)
// Thread-safe.

#include <string>

#include "molt/common/error.hpp"
#include "molt/common/metrics.hpp"
#include "molt/replicator/target/apply_plan.hpp"

namespace molt::replicator {

class apply_metrics {
public:
    explicit apply_metrics(metrics::registry& registry);

    /// After a commit of `plan`: rows per table, the duration, and "upserted rows" / "deleted
    /// rows" at debug level.
    void applied(const std::string& schema, const apply_plan& plan, double elapsed_seconds);
    /// A target transaction about to be retried.
    void retried(const std::string& schema, retry_class why);

private:
    metrics::family<metrics::counter>& upserts_;
    metrics::family<metrics::counter>& deletes_;
    metrics::family<metrics::counter>& retries_;
    metrics::family<metrics::histogram>& duration_;
};

}  // namespace molt::replicator
