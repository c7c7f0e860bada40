#include "molt/replicator/target/ordered_apply.hpp"

#include <algorithm>
#include <list>
#include <numeric>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "molt/common/log.hpp"
#include "molt/replicator/target/apply_plan.hpp"
#include "molt/replicator/target/fatal_rows.hpp"

namespace molt::replicator {
namespace {

bool reorderable(const error& e) {
    return e.retry() == retry_class::unique || e.retry() == retry_class::defer;
}

std::string_view kind_of(const planned_statement& st) {
    return st.type == planned_statement::kind::upsert ? "upsert" : "delete";
}

// Runs `statements` inside savepoint `name`: on success it is released; on failure rolled back
// to (and released), and the statement's error returned. A failure to roll back to the savepoint
// (the connection is gone) is returned instead. Oracle has no RELEASE SAVEPOINT: its savepoint
// stays until the transaction ends, and the next SAVEPOINT of the same name moves it.
result<void> try_in_savepoint(target_session& db, const target_dialect& dialect,
                              std::string_view name,
                              const std::vector<const planned_statement*>& statements) {
    const std::string savepoint(name);
    auto release = [&]() -> result<void> {
        if (!dialect.releases_savepoints()) {
            return ok();
        }
        return db.execute("RELEASE SAVEPOINT " + savepoint, {});
    };
    if (auto done = db.execute("SAVEPOINT " + savepoint, {}); !done) {
        return done;
    }
    for (const planned_statement* st : statements) {
        if (auto done = run_statement(db, *st); !done) {
            const error failed = done.error().with_context(
                fmt::format("{} on {}", kind_of(*st), st->table->qualified.to_string()));
            if (auto back = db.execute("ROLLBACK TO SAVEPOINT " + savepoint, {}); !back) {
                // A deadlock (MySQL 1213) rolls the whole transaction back, savepoint included:
                // report the deadlock (retried), not the missing savepoint.
                const retry_class why = failed.retry();
                if (why == retry_class::retry_now || why == retry_class::reconnect) {
                    return failed;
                }
                return back;
            }
            if (auto released = release(); !released) {
                return released;
            }
            return failed;
        }
    }
    return release();
}

std::vector<const planned_statement*> all_of(const apply_plan& plan) {
    std::vector<const planned_statement*> out;
    for (const planned_statement& st : plan.statements) {
        out.push_back(&st);
    }
    return out;
}

// The parameters of a row that writes every column: one per column, or as many as a
// userscript's expression takes (value_params).
size_t writable_params(const table_info& t) {
    size_t n = 0;
    for (const column_info& c : t.columns) {
        n += c.generated ? 0 : value_params(c);
    }
    return n;
}

// The parameters of a row's primary key, first among an upsert's.
size_t key_params(const table_info& t) {
    size_t n = 0;
    for (size_t k = 0; k < t.pk_count; ++k) {
        n += value_params(t.columns[k]);
    }
    return n;
}

// Step 4: rows that collide with each other whatever the order (a swap). Deletes their keys and
// writes them again, when that is safe; otherwise explains why it stalls.
result<size_t> reinsert_cycle(target_session& db, const schema_snapshot& schema,
                              const target_dialect& dialect,
                              const std::vector<const planned_statement*>& left,
                              const error& last) {
    std::vector<planned_statement> deletes;
    for (const planned_statement* st : left) {
        const table_info& t = *st->table;
        std::string why;
        if (st->type != planned_statement::kind::upsert) {
            why = "a delete is refused whatever the order";
        } else if (t.conditional()) {
            why =
                "the userscript's cas or deadlines make its upserts conditional, so its rows are "
                "not deleted and inserted again";
        } else if (schema.referenced(t)) {
            why =
                "other tables reference it by foreign key, so its rows are not deleted and "
                "inserted again";
        } else if (st->params.size() != writable_params(t)) {
            why =
                "the change does not carry every column (column families), so the row "
                "cannot be inserted again whole";
        }
        if (!why.empty()) {
            return error{errc::database_error,
                         fmt::format("a unique key conflict on {} that no row order resolves (rows "
                                     "exchange unique values within one source transaction); {}; "
                                     "the replicator waits until it is resolved by hand: {}",
                                     t.qualified.to_string(), why, last.message()),
                         retry_class::fatal};
        }
        planned_statement erase;
        erase.type = planned_statement::kind::erase;
        erase.table = &t;
        erase.rows = 1;
        erase.sql = dialect.delete_sql(t, 1);
        // The upsert's parameters start with the primary key (columns are key first): values,
        // or one-element arrays when it binds by column. A delete binds by column when its key
        // columns allow, which an upsert of an array or geometry column does not.
        erase.params.assign(st->params.begin(),
                            st->params.begin() + static_cast<std::ptrdiff_t>(key_params(t)));
        std::vector<size_t> key(t.pk_count);
        std::iota(key.begin(), key.end(), size_t{0});
        erase.by_column = dialect.binds_columns(t, key);
        erase.arrays = erase.by_column && dialect.binds_arrays();
        if (erase.by_column && !st->by_column) {
            erase.params = dialect.pack_columns(std::move(erase.params), t.pk_count);
        }
        deletes.push_back(std::move(erase));
    }
    std::vector<const planned_statement*> statements;
    for (const planned_statement& st : deletes) {
        statements.push_back(&st);
    }
    statements.insert(statements.end(), left.begin(), left.end());
    if (auto done = try_in_savepoint(db, dialect, "molt_cycle", statements); !done) {
        return done.error().with_context(
            "deleting and inserting again the rows of a unique key cycle");
    }
    return left.size();
}

// Steps 3 and 4 for one source transaction. A row the target refuses for bad data goes to the
// dead-letter queue when `fatal` diverts it (fatal_rows.hpp); otherwise it fails the transaction
// with an error naming its key.
result<size_t> row_by_row(target_session& db, const schema_snapshot& schema,
                          const proto::batch& rows, const target_dialect& dialect, hlc at,
                          const fatal_rows* fatal, std::vector<dead_letter>& letters) {
    auto plan = plan_batch_deletes_first_if_safe(schema, rows, dialect, 1, at);
    if (!plan) {
        return plan.error();
    }
    std::list<const planned_statement*> left;
    for (const planned_statement& st : plan->statements) {
        left.push_back(&st);
    }
    std::optional<error> last;
    bool progress = true;
    while (!left.empty() && progress) {
        progress = false;
        for (auto it = left.begin(); it != left.end();) {
            auto done = try_in_savepoint(db, dialect, "molt_row", {*it});
            if (done) {
                it = left.erase(it);
                progress = true;
                continue;
            }
            if (!reorderable(done.error())) {
                if (fatal != nullptr && fatal->diverts(done.error())) {
                    if (auto sent =
                            fatal->divert(db, schema, rows, **it, at, done.error(), letters);
                        !sent) {
                        return sent.error();
                    }
                    it = left.erase(it);
                    progress = true;
                    continue;
                }
                const error& e = done.error();
                return error{e.code(),
                             fmt::format("the row with key {}: {}", log::sanitize((*it)->key),
                                         without_row_values(e.message())),
                             e.retry()};
            }
            last = done.error();
            ++it;
        }
    }
    if (left.empty()) {
        return size_t{0};
    }
    return reinsert_cycle(db, schema, dialect, {left.begin(), left.end()}, *last);
}

}  // namespace

result<size_t> apply_transactions_in_order(target_session& db, const schema_snapshot& schema,
                                           const proto::batch& rows, const target_dialect& dialect,
                                           size_t rows_per_statement) {
    size_t transactions = 0;
    for (const hlc at : source_transactions(rows)) {
        auto plan = plan_batch(schema, rows, dialect, rows_per_statement,
                               statement_order::upserts_first, at);
        if (!plan) {
            db.rollback();
            return plan.error();
        }
        if (auto done = execute_statements(db, *plan); !done) {
            return done.error().with_context(fmt::format("source transaction {}", at.to_string()));
        }
        ++transactions;
    }
    return transactions;
}

result<ordered_apply_stats> apply_in_source_order(target_session& db, const schema_snapshot& schema,
                                                  const proto::batch& rows,
                                                  const target_dialect& dialect,
                                                  size_t rows_per_statement,
                                                  const fatal_rows* fatal) {
    ordered_apply_stats stats;
    auto fail = [&db](const error& e) -> result<ordered_apply_stats> {
        db.rollback();
        return e;
    };
    for (const hlc at : source_transactions(rows)) {
        ++stats.transactions;
        bool applied = false;
        for (const statement_order order :
             {statement_order::upserts_first, statement_order::deletes_first}) {
            auto plan = plan_batch(schema, rows, dialect, rows_per_statement, order, at);
            if (!plan) {
                return fail(plan.error());
            }
            if (order == statement_order::deletes_first && deletes_referenced_rows(schema, *plan)) {
                break;  // could cascade into a child moved elsewhere: row by row, upserts first
            }
            auto done = try_in_savepoint(db, dialect, "molt_tx", all_of(*plan));
            if (done) {
                applied = true;
                break;
            }
            if (done.error().retry() == retry_class::fatal) {
                break;  // row by row: find the row the target refuses, and name it
            }
            if (!reorderable(done.error())) {
                return fail(done.error());
            }
        }
        if (applied) {
            continue;
        }
        ++stats.row_by_row;
        auto reinserted = row_by_row(db, schema, rows, dialect, at, fatal, stats.dead_letters);
        if (!reinserted) {
            return fail(reinserted.error().with_context(
                fmt::format("source transaction {}", at.to_string())));
        }
        stats.reinserted += *reinserted;
    }
    return stats;
}

}  // namespace molt::replicator
