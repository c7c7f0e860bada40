#include "molt/replicator/target/table_writer.hpp"

namespace molt::replicator {

std::vector<table_counts> custom_counts(const schema_snapshot& target, const proto::batch& rows) {
    std::vector<table_counts> counts;
    counts.reserve(rows.tables().size());
    for (const proto::table_mutations& group : rows.tables()) {
        table_counts t{resolve_topic(target, group.topic), group.mutations.size(), 0, 0};
        if (t.table == nullptr) {
            continue;
        }
        for (const proto::mutation& m : group.mutations) {
            ++(m.deleted ? t.deletes : t.upserts);
        }
        counts.push_back(t);
    }
    return counts;
}

}  // namespace molt::replicator
