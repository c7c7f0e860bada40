#pragma once
// The table_writer (target/apply/table_writer.hpp) of a userscript with onWrite (replicator@v1:
// apply) handlers: the appliers leave the rows of those tables out of their plan and hand them
// here, inside the target transaction. The script's getTX().query/exec run on that
// transaction's session, with its placeholders ($1, $2 … on PostgreSQL; ? on MySQL, MariaDB
// and Oracle) bound as text; api.write() and getTX().apply() run the built-in statements.

#include <cstddef>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

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
    /// Once per table: a table with onWrite that has foreign keys to or from other tables.
    void warn_foreign_keys(const qualified_name& schema, const table_info& t) const;

    const userscript& script_;
    const target_dialect& dialect_;
    size_t rows_per_statement_;
    mutable std::mutex warned_mutex_;
    mutable std::set<std::string> warned_;
};

/// A script's statement as the sessions run it.
struct bound_sql {
    std::string sql;            ///< each placeholder as :p1, :p2 … in the order they appear
    std::vector<size_t> order;  ///< for each of those, the script's parameter (from 0)
};

/// Translates the placeholders of a script's statement (PostgreSQL's $N, in any order and as
/// often as needed; each ? in turn on MySQL, MariaDB and Oracle) for `params` parameters;
/// quoted text, quoted names and comments are left alone. Errors (errc::invalid_argument,
/// retry_class::fatal), before anything is sent: a placeholder without its parameter, a
/// parameter no placeholder uses, more than one statement, and a statement that would end the
/// replicator's transaction (COMMIT, ROLLBACK but to a savepoint, BEGIN; on MySQL and Oracle,
/// the DDL and LOCK statements that commit).
[[nodiscard]] result<bound_sql> bind_placeholders(std::string_view sql, molt::dialect dialect,
                                                  size_t params);

}  // namespace molt::replicator::script
