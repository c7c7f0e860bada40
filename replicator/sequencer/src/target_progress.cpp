#include "molt/replicator/sequencer/target_progress.hpp"

#include <string>

#include "molt/replicator/staging/staging_store.hpp"

namespace molt::replicator {

sql_params range_params(hlc first, hlc last) {
    return {std::to_string(first.wall()), std::to_string(first.logical()),
            std::to_string(last.wall()), std::to_string(last.logical())};
}

result<target_progress> read_progress(session_pool& pool, const progress_statements& sql,
                                      std::chrono::steady_clock::time_point deadline) {
    auto session = pool.acquire(deadline);
    if (!session) {
        return session.error();
    }
    if (auto made = (*session)->execute(sql.create, {}); !made) {
        session->mark_broken();
        return made.error().with_context("creating " + sql.table);
    }
    auto rows = (*session)->query(sql.select, {});
    if (!rows) {
        session->mark_broken();
        return rows.error().with_context("reading " + sql.table);
    }
    target_progress out;
    for (const sql_row& row : *rows) {
        auto first = hlc_from_row(row, 0, sql.table);
        auto last = hlc_from_row(row, 2, sql.table);
        if (!first || !last) {
            return first ? last.error() : first.error();
        }
        if (first->is_zero()) {
            out.committed = std::max(out.committed, *last);
        } else {
            out.applied.emplace_back(*first, *last);
        }
    }
    return out;
}

result<void> write_checkpoint(session_pool& pool, const progress_statements& sql, hlc resolved,
                              std::chrono::steady_clock::time_point deadline) {
    auto session = pool.acquire(deadline);
    if (!session) {
        return session.error();
    }
    target_session& db = **session;
    auto run = [&]() -> result<void> {
        if (auto begun = db.begin(); !begun) {
            return begun;
        }
        if (auto done = db.execute(sql.clear, {}); !done) {
            db.rollback();
            return done;
        }
        if (auto done = db.execute(sql.insert, range_params(hlc(), resolved)); !done) {
            db.rollback();
            return done;
        }
        return db.commit();
    };
    if (auto done = run(); !done) {
        if (done.error().retry() == retry_class::reconnect ||
            done.error().code() == errc::unavailable) {
            session->mark_broken();
        }
        return done.error().with_context("committing checkpoint " + resolved.to_string());
    }
    return ok();
}

result<bool> record_progress(target_session& db, const progress_statements& sql, hlc first,
                             hlc last) {
    if (!sql.present.empty()) {
        auto rows =
            db.query(sql.present, {std::to_string(last.wall()), std::to_string(last.logical())});
        if (!rows) {
            return rows.error();
        }
        if (!rows->empty()) {
            return false;
        }
        if (auto done = db.execute(sql.record, range_params(first, last)); !done) {
            return done.error();
        }
        return true;
    }
    if (sql.recorded.empty()) {
        auto rows = db.query(sql.record, range_params(first, last));
        if (!rows) {
            return rows.error();
        }
        return !rows->empty();
    }
    if (auto done = db.execute(sql.record, range_params(first, last)); !done) {
        return done.error();
    }
    auto count = db.query(sql.recorded, {});
    if (!count) {
        return count.error();
    }
    return !count->empty() && !count->front().empty() && count->front().front() != "0";
}

}  // namespace molt::replicator
