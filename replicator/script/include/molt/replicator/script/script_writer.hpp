#pragma once
// The table_writer (target/apply/table_writer.hpp) of a userscript with onWrite (replicator@v1:
// apply) handlers: the appliers leave the rows of those tables out of their plan and hand them
// here, inside the target transaction. The script's getTX().query/exec run on that
// transaction's session, with its placeholders ($1, $2 … on PostgreSQL; ? on MySQL, MariaDB
// and Oracle) bound as text; api.write() and getTX().apply() run the built-in statements.

#include <cstddef>

#include "molt/replicator/core/target.hpp"
#include "molt/replicator/script/userscript.hpp"
#include "molt/replicator/target/table_writer.hpp"

namespace molt::replicator::script {

class script_writer final : public table_writer {
public:
    script_writer(const userscript& script, const target_dialect& dialect,
                  size_t rows_per_statement)
        : script_(script), dialect_(dialect), rows_per_statement_(rows_per_statement) {}

    [[nodiscard]] result<std::optional<split_rows>> split(const qualified_name& schema,
                                                          const schema_snapshot& target,
                                                          const proto::batch& rows) const override;
    [[nodiscard]] result<void> write(target_session& db, const qualified_name& schema,
                                     const schema_snapshot& target, const proto::batch& rows,
                                     std::chrono::steady_clock::time_point deadline) const override;

private:
    const userscript& script_;
    const target_dialect& dialect_;
    size_t rows_per_statement_;
};

/// A script's SQL with its placeholders as the sessions bind them (:p1, :p2 …): PostgreSQL's
/// $N, or each ? in turn; quoted text, quoted names and comments are left alone.
[[nodiscard]] std::string bind_placeholders(std::string_view sql, molt::dialect dialect);

}  // namespace molt::replicator::script
