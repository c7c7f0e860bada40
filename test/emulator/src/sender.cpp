#include "molt/emulator/sender.hpp"

#include <algorithm>
#include <limits>
#include <unordered_set>

#include "molt/emulator/capture.hpp"
#include "molt/proto/encoder.hpp"

namespace molt::emulator {
namespace {

using clock_type = std::chrono::steady_clock;

bool chance(std::mt19937_64& rng, double p) {
    return p > 0 && std::uniform_real_distribution<double>(0, 1)(rng) < p;
}

}  // namespace

size_t range_of(uint64_t key_hash) {
    // splitmix64's finaliser: consecutive hashes (small integer keys) spread over the ranges.
    uint64_t z = key_hash + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return static_cast<size_t>((z ^ (z >> 31)) % ranges);
}

std::chrono::nanoseconds restart_backoff::next(clock_type::time_point now, std::mt19937_64& rng) {
    if (current_.count() == 0 || now - last_ > settings_.reset_after) {
        current_ = settings_.initial;
    } else {
        current_ = std::min(current_ * 2, settings_.max);
    }
    last_ = now;
    const double jitter = std::uniform_real_distribution<double>(0.85, 1.15)(rng);
    return std::chrono::duration_cast<std::chrono::nanoseconds>(current_ * jitter);
}

sender::sender(sink_settings settings, fault_rates faults, transport_factory connect, uint64_t seed)
    : settings_(std::move(settings)),
      faults_(faults),
      connect_(std::move(connect)),
      rng_(seed),
      open_(std::max<size_t>(1, settings_.order.nodes)),
      open_since_(open_.size()),
      restart_backoff_(settings_.restart) {}

double sender::rate(fault f) const {
    switch (f) {
    case fault::duplicate: return faults_.duplicate;
    case fault::replay: return faults_.replay;
    case fault::late_duplicate: return faults_.late_duplicate;
    case fault::duplicate_resolved: return faults_.duplicate_resolved;
    case fault::split: return faults_.split_transaction;
    case fault::drop: return faults_.drop_connection;
    case fault::lost_resolved: return faults_.lost_resolved;
    case fault::abandon: return faults_.abandon;
    }
    return 0;
}

bool sender::owed_locked(fault f) const {
    return faults_.at_least_once && rate(f) > 0 && !fired_[static_cast<size_t>(f)];
}

bool sender::draw_locked(fault f, std::mt19937_64& rng) {
    const bool owed = owed_locked(f);
    if (!chance(rng, rate(f)) && !owed) {
        return false;
    }
    fired_[static_cast<size_t>(f)] = true;
    return true;
}

bool sender::inject_late_locked() {
    // A slow copy of an old request arriving after its rows were resolved.
    std::vector<const batch*> covered;
    for (const batch& h : history_) {
        if (!h.messages.empty() && !(resolved_acknowledged_ < log_[h.messages.back()].updated)) {
            covered.push_back(&h);
        }
    }
    if (covered.empty()) {
        return false;
    }
    batch late = *covered[std::uniform_int_distribution<size_t>(0, covered.size() - 1)(rng_)];
    late.late = true;
    enqueue_locked(std::move(late));
    ++stats_.late_duplicates;
    fired_[static_cast<size_t>(fault::late_duplicate)] = true;
    return true;
}

sender::~sender() {
    stop();
}

namespace {

hlc just_below(hlc h) {
    return h.logical() > 0 ? hlc(h.wall(), h.logical() - 1) : hlc(h.wall() - 1, 0);
}

}  // namespace

void sender::start() {
    last_resolved_emit_ = last_checkpoint_ = clock_type::now();
    for (size_t node = 0; node < open_.size(); ++node) {
        for (size_t i = 0; i < settings_.workers; ++i) {
            threads_.emplace_back([this, node] { worker_loop(node); });
        }
    }
    // The coordinator emits one resolved timestamp at a time.
    threads_.emplace_back([this] { worker_loop(open_.size()); });
    threads_.emplace_back([this] { flusher_loop(); });
}

void sender::stop() {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
        // Without a client timeout a request may wait for ever.
        for (transport* t : busy_) {
            t->cancel();
        }
    }
    changed_.notify_all();
    // A job may stop its sender from two threads at once (a feed failing while it is
    // cancelled): the second caller waits for the first's joins.
    const std::lock_guard<std::mutex> joining(join_mutex_);
    for (std::thread& t : threads_) {
        t.join();
    }
    threads_.clear();
}

void sender::add(const transaction& txn, bool scan) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] {
        return stopping_ || log_.size() - first_unacknowledged_ < settings_.max_unacknowledged;
    });
    if (scan) {
        // Under the lock that adds its rows: the flusher never sees the one without the other.
        scan_ = std::max(scan_.value_or(txn.updated), txn.updated);
    }
    const size_t first = log_.size();
    // Transactions come in HLC order, but the next may share this one's HLC (unrelated
    // transactions can): every row below it is now added. finish() and advance() pass it.
    source_frontier_ = std::max(source_frontier_, just_below(txn.updated));
    for (const change& c : txn.changes) {
        texts_.push_back(c.message);
        stats_.text_bytes_held += c.message.size();
        to_feed_.push_back(log_.size());
        log_.push_back({txn.updated, c.key_hash, &texts_.back(), range_of(c.key_hash), false});
    }
    if (txn.changes.size() >= 2 && draw_locked(fault::split, rng_)) {
        txn_split_points_.insert(first + txn.changes.size() / 2);
        ++stats_.split_transactions;
    }
    feed_locked();
    changed_.notify_all();
}

void sender::feed_locked() {
    const auto now = clock_type::now();
    const auto lag = settings_.order.lagging_range;
    for (; !to_feed_.empty(); to_feed_.pop_front()) {
        const size_t i = to_feed_.front();
        if (lag.count() > 0 && log_[i].range == 0) {
            lagging_.emplace_back(now + lag, i);
        } else {
            place_locked(i);
        }
    }
    feed_lagging_locked(now);
}

void sender::feed_lagging_locked(clock_type::time_point now) {
    // Every row of the range waits the same time: they come due in order.
    for (; !lagging_.empty() && lagging_.front().first <= now; lagging_.pop_front()) {
        place_locked(lagging_.front().second);
    }
}

void sender::place_locked(size_t index) {
    const auto& flush = settings_.config.flush;
    const size_t node = log_[index].range % open_.size();
    if (txn_split_points_.count(index) != 0) {
        close_open_locked(node);
    }
    batch& open = open_[node];
    if (open.messages.empty()) {
        open_since_[node] = clock_type::now();
    }
    open.messages.push_back(index);
    open.bytes += log_[index].text->size();
    // Thresholds are checked after appending; all zero sends every message on its own.
    if (flush.immediate() ||
        (flush.messages > 0 && open.messages.size() >= static_cast<size_t>(flush.messages)) ||
        (flush.bytes > 0 && open.bytes >= static_cast<size_t>(flush.bytes))) {
        close_open_locked(node);
    }
}

void sender::close_open_locked() {
    for (size_t node = 0; node < open_.size(); ++node) {
        close_open_locked(node);
    }
}

void sender::close_open_locked(size_t node) {
    if (open_[node].messages.empty()) {
        return;
    }
    batch b = std::move(open_[node]);
    open_[node] = batch{};
    b.node = node;
    if (settings_.order.shuffle && b.messages.size() > 1) {
        // A random interleaving of the keys' message sequences: shuffle whose turn each slot
        // is, then give every slot its key's next message.
        std::unordered_map<uint64_t, std::deque<size_t>> by_key;
        std::vector<uint64_t> turns;
        turns.reserve(b.messages.size());
        for (const size_t i : b.messages) {
            by_key[log_[i].key_hash].push_back(i);
            turns.push_back(log_[i].key_hash);
        }
        std::shuffle(turns.begin(), turns.end(), rng_);
        for (size_t slot = 0; slot < turns.size(); ++slot) {
            std::deque<size_t>& next = by_key[turns[slot]];
            b.messages[slot] = next.front();
            next.pop_front();
        }
    }
    std::vector<std::string> texts;
    texts.reserve(b.messages.size());
    std::unordered_set<uint64_t> keys;
    for (const size_t i : b.messages) {
        texts.push_back(*log_[i].text);
        keys.insert(log_[i].key_hash);
    }
    b.keys.assign(keys.begin(), keys.end());
    b.body = proto::encode_payload(texts);
    enqueue_locked(std::move(b));
}

void sender::enqueue_locked(batch b) {
    b.seq = next_seq_++;
    if (b.is_resolved) {
        b.node = open_.size();
        // A resolved timestamp still waiting for the one in flight is superseded: CockroachDB
        // emits the latest once the previous emission returns.
        std::erase_if(pending_, [](const batch& p) { return p.is_resolved; });
    }
    if (!b.is_resolved && !b.late) {
        for (const uint64_t k : b.keys) {
            key_queues_[k].push_back(b.seq);
        }
    }
    pending_.push_back(std::move(b));
    changed_.notify_all();
}

bool sender::runnable_locked(const batch& b) const {
    if (b.is_resolved) {
        // CockroachDB emits resolved timestamps synchronously: one at a time. One of a run the
        // restart cancelled does not count.
        return resolved_in_flight_ != generation_;
    }
    if (b.late) {
        return true;
    }
    for (const uint64_t k : b.keys) {
        const auto it = key_queues_.find(k);
        if (it == key_queues_.end() || it->second.front() != b.seq) {
            return false;
        }
    }
    return true;
}

hlc sender::closed_locked() const {
    const closed_timestamp_settings& c = settings_.closed_timestamp;
    if (c.target.count() <= 0) {
        return {std::numeric_limits<int64_t>::max(), std::numeric_limits<int32_t>::max()};
    }
    int64_t wall = wall_clock_nanos() - c.target.count();
    if (c.refresh.count() > 0 && wall > 0) {
        wall -= wall % c.refresh.count();
    }
    return std::max(hlc(wall, 0), start_);
}

hlc sender::frontier_locked(hlc closed) const {
    const hlc top = std::min(source_frontier_, closed);
    if (first_unacknowledged_ >= log_.size()) {
        return top;
    }
    // Just below the oldest unacknowledged row: every row at or below it is acknowledged.
    return std::min(top, just_below(log_[first_unacknowledged_].updated));
}

void sender::advance(hlc frontier) {
    const std::lock_guard<std::mutex> lock(mutex_);
    source_frontier_ = std::max(source_frontier_, frontier);
}

void sender::set_start(hlc start) {
    const std::lock_guard<std::mutex> lock(mutex_);
    start_ = std::max(start_, start);
}

void sender::set_closed_timestamp(closed_timestamp_settings closed) {
    const std::lock_guard<std::mutex> lock(mutex_);
    settings_.closed_timestamp = closed;
}

void sender::save_checkpoint_locked() {
    // While a row of an initial scan is unacknowledged the frontier is empty: nothing is saved,
    // nothing resolved (log_ is in HLC order: the oldest unacknowledged row tells).
    if (scan_ && first_unacknowledged_ < log_.size() &&
        !(*scan_ < log_[first_unacknowledged_].updated)) {
        return;
    }
    const hlc closed = closed_locked();
    const hlc top = std::min(source_frontier_, closed);
    // Each range's: just below its oldest unacknowledged row.
    std::array<std::optional<hlc>, ranges> oldest{};
    size_t found = 0;
    for (size_t i = first_unacknowledged_; i < log_.size() && found < ranges; ++i) {
        std::optional<hlc>& o = oldest[log_[i].range];
        if (!log_[i].acknowledged && !o) {
            o = log_[i].updated;
            ++found;
        }
    }
    for (size_t r = 0; r < ranges; ++r) {
        const hlc frontier = oldest[r] ? std::min(top, just_below(*oldest[r])) : top;
        range_checkpoints_[r] = std::max(range_checkpoints_[r], frontier);
    }
    checkpoint_ = std::max(checkpoint_, frontier_locked(closed));
    release_checkpointed_locked();
}

void sender::request_restart_locked() {
    if (restart_requested_) {
        return;
    }
    restart_requested_ = true;
    ++generation_;
    // The job's context is cancelled: requests in flight end now, their answers unread.
    stats_.cancelled += busy_.size();
    for (transport* t : busy_) {
        t->cancel();
    }
    const auto now = clock_type::now();
    restart_at_ = now + restart_backoff_.next(now, rng_);
    changed_.notify_all();
}

void sender::restart_locked() {
    // The changefeed restarts from its saved checkpoints: what is pending is dropped and every
    // range emits again everything after its own checkpoint. Rows at or below it are not, even
    // when no resolved timestamp covering them was ever delivered.
    pending_.clear();
    key_queues_.clear();
    for (batch& open : open_) {
        open = batch{};
    }
    lagging_.clear();
    const auto from =
        std::upper_bound(log_.begin(), log_.end(), checkpoint_,
                         [](const hlc& t, const logged_message& m) { return t < m.updated; });
    std::vector<size_t> replay;
    for (size_t i = static_cast<size_t>(from - log_.begin()); i < log_.size(); ++i) {
        logged_message& m = log_[i];
        if (range_checkpoints_[m.range] < m.updated) {
            m.acknowledged = false;
            replay.push_back(i);
        }
    }
    if (!replay.empty()) {
        first_unacknowledged_ = std::min(first_unacknowledged_, replay.front());
    }
    // The catch-up scan: each range goes key by key, every version of a key oldest first.
    if (settings_.order.key_order_replay) {
        std::stable_sort(replay.begin(), replay.end(),
                         [&](size_t a, size_t b) { return log_[a].key_hash < log_[b].key_hash; });
    }
    to_feed_.assign(replay.begin(), replay.end());
    resolved_sent_ = resolved_acknowledged_;
    restart_requested_ = false;
    ++stats_.restarts;
    feed_locked();
}

void sender::release_checkpointed_locked() {
    // A restart replays only what comes after the checkpoint, and every batch keeps its own
    // body: the text of acknowledged rows it covers is never read again.
    while (released_ < first_unacknowledged_ && !(checkpoint_ < log_[released_].updated)) {
        std::string& text = texts_[released_];
        stats_.text_bytes_held -= text.size();
        std::string().swap(text);
        ++released_;
    }
}

bool sender::deliver(transport& t, const batch& b, uint64_t generation, std::mt19937_64& rng) {
    const auto& retry = settings_.config.retry;
    const int64_t attempts = retry.max ? *retry.max + 1 : INT64_MAX;
    auto backoff = retry.backoff;
    for (int64_t attempt = 1; attempt <= attempts; ++attempt) {
        send_mode mode = send_mode::whole;
        uint64_t sent = 0;  // this request's place in the order requests were sent
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            if (stopping_ || generation != generation_) {
                return false;
            }
            if (draw_locked(fault::drop, rng)) {
                mode = send_mode::drop_midway;
                ++stats_.dropped_connections;
            } else if (draw_locked(fault::abandon, rng)) {
                mode = send_mode::abandon;
                ++stats_.abandoned;
            }
            ++stats_.requests;
            stats_.rows_sent += b.messages.size();
            busy_.push_back(&t);
            sent = ++requests_sent_;
        }
        const auto start = clock_type::now();
        const send_outcome out = t.post(b.body, mode);
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            busy_.erase(std::find(busy_.begin(), busy_.end(), &t));
            if (generation != generation_) {
                return false;  // cancelled by a restart: whatever came back is not read
            }
            const bool success = out.status >= 200 && out.status < 300;
            // The job shows the outcome of the newest request that answered: an older one
            // answering late (sent before the sink began failing) does not hide a failure.
            if (sent > last_outcome_of_) {
                last_outcome_of_ = sent;
                last_error_ = success ? std::string() : out.error;
            }
            if (success) {
                stats_.latencies.push_back(
                    std::chrono::duration<double>(clock_type::now() - start).count());
                return true;
            }
            if (attempt == attempts) {
                break;
            }
            ++stats_.retries;
        }
        if (mode == send_mode::abandon) {
            continue;  // the client timed out: the same bytes go out again at once
        }
        // Backoff·2^(k-1), capped at 30 s, ±15 % jitter; identical bytes next time.
        const double jitter = std::uniform_real_distribution<double>(0.85, 1.15)(rng);
        const auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::min<std::chrono::nanoseconds>(backoff, std::chrono::seconds(30)) * jitter);
        std::unique_lock<std::mutex> lock(mutex_);
        if (changed_.wait_for(lock, wait, [&] { return stopping_ || generation != generation_; })) {
            return false;
        }
        backoff = std::min<std::chrono::nanoseconds>(backoff * 2, std::chrono::seconds(30));
    }
    return false;
}

void sender::worker_loop(size_t node) {
    std::unique_ptr<transport> t = connect_();
    std::mt19937_64 rng(std::random_device{}());
    for (;;) {
        batch b;
        uint64_t generation = 0;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            std::deque<batch>::iterator it;
            auto ready = [&] {
                if (stopping_) {
                    return true;
                }
                if (restart_requested_) {
                    return false;
                }
                it = std::find_if(pending_.begin(), pending_.end(), [&](const batch& candidate) {
                    return candidate.node == node && runnable_locked(candidate);
                });
                return it != pending_.end();
            };
            while (!ready()) {
                // Idle: the connection closes once it has been idle for the idle timeout.
                if (const auto due = t->close_if_idle(clock_type::now())) {
                    changed_.wait_until(lock, *due);
                } else {
                    changed_.wait(lock);
                }
            }
            if (stopping_) {
                return;
            }
            b = std::move(*it);
            pending_.erase(it);
            ++in_flight_;
            generation = generation_;
            if (b.is_resolved) {
                resolved_in_flight_ = generation;
            }
        }
        bool ok = deliver(*t, b, generation, rng);
        if (ok && !b.late) {
            bool duplicate = false;
            {
                const std::lock_guard<std::mutex> lock(mutex_);
                duplicate =
                    draw_locked(b.is_resolved ? fault::duplicate_resolved : fault::duplicate, rng);
                if (duplicate) {
                    ++(b.is_resolved ? stats_.duplicate_resolved : stats_.duplicates);
                }
            }
            if (duplicate) {
                // The request landed but its response was lost: the sink retries the same bytes
                // (until a 2xx, like any retry) while this batch still holds its keys.
                ok = deliver(*t, b, generation, rng);
            }
        }
        std::unique_lock<std::mutex> lock(mutex_);
        --in_flight_;
        if (b.is_resolved && resolved_in_flight_ == generation) {
            resolved_in_flight_.reset();
        }
        if (generation != generation_ && !stopping_) {
            // A batch of an earlier run of the feed is gone; a restart may have cancelled this
            // connection (for good): the next run opens its own, as CockroachDB's does.
            changed_.notify_all();
            lock.unlock();
            t = connect_();
            continue;
        }
        if (b.late || stopping_) {
            // A late copy is not tracked.
            changed_.notify_all();
            continue;
        }
        if (!ok) {
            // Retries ran out: the changefeed restarts from its checkpoint.
            request_restart_locked();
            continue;
        }
        if (b.is_resolved) {
            resolved_acknowledged_ = std::max(resolved_acknowledged_, b.resolved);
            ++stats_.resolved_sent;
        } else {
            for (const size_t i : b.messages) {
                if (!log_[i].acknowledged) {
                    log_[i].acknowledged = true;
                    ++stats_.rows_acknowledged;
                }
            }
            while (first_unacknowledged_ < log_.size() &&
                   log_[first_unacknowledged_].acknowledged) {
                ++first_unacknowledged_;
            }
            for (const uint64_t k : b.keys) {
                auto q = key_queues_.find(k);
                if (q != key_queues_.end() && !q->second.empty() && q->second.front() == b.seq) {
                    q->second.pop_front();
                    if (q->second.empty()) {
                        key_queues_.erase(q);
                    }
                }
            }
            if (history_.size() < 256) {
                history_.push_back(std::move(b));
            } else {
                history_[std::uniform_int_distribution<size_t>(0, 255)(rng_)] = std::move(b);
            }
        }
        changed_.notify_all();
    }
}

void sender::flusher_loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
        changed_.wait_for(lock, std::chrono::milliseconds(5));
        if (stopping_) {
            return;
        }
        const auto now = clock_type::now();
        if (restart_requested_) {
            // Requests of the failed run were cancelled; their workers need not be back.
            if (now >= restart_at_) {
                restart_locked();
                changed_.notify_all();
            }
            continue;
        }
        feed_lagging_locked(now);
        const auto& flush = settings_.config.flush;
        for (size_t node = 0; node < open_.size(); ++node) {
            if (!open_[node].messages.empty() && flush.frequency.count() > 0 &&
                now - open_since_[node] >= flush.frequency) {
                close_open_locked(node);
            }
        }
        // The checkpoint is saved every min_checkpoint_frequency; a resolved timestamp for it
        // goes out once the resolved interval has passed, after the save (CockroachDB persists
        // its high-water mark before it emits the resolved timestamp).
        if (now - last_checkpoint_ < settings_.checkpoint_interval) {
            continue;
        }
        last_checkpoint_ = now;
        // The sink is flushed before a checkpoint.
        close_open_locked();
        save_checkpoint_locked();
        if (!settings_.resolved || now - last_resolved_emit_ < settings_.resolved_interval ||
            !(resolved_sent_ < checkpoint_)) {
            continue;
        }
        last_resolved_emit_ = now;
        if (draw_locked(fault::lost_resolved, rng_)) {
            // Saved, never delivered: the job restarts first, and replays from the checkpoint.
            ++stats_.lost_resolved;
            request_restart_locked();
            continue;
        }
        resolved_sent_ = checkpoint_;
        batch r;
        r.is_resolved = true;
        r.resolved = checkpoint_;
        r.body = proto::encode_resolved(checkpoint_);
        enqueue_locked(std::move(r));
        // A late duplicate owed under at_least_once waits for an emission with a covered batch.
        if (chance(rng_, faults_.late_duplicate) || owed_locked(fault::late_duplicate)) {
            (void)inject_late_locked();
        }
        if (draw_locked(fault::replay, rng_)) {
            request_restart_locked();
        }
    }
}

bool sender::finish(hlc last, std::chrono::nanoseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    const auto deadline = clock_type::now() + timeout;
    close_open_locked();
    if (owed_locked(fault::replay) && settings_.resolved) {
        // at_least_once: a run too short for a resolved emission still replays once.
        fired_[static_cast<size_t>(fault::replay)] = true;
        request_restart_locked();
    }
    auto idle = [&] { return !restart_requested_ && in_flight_ == 0 && pending_.empty(); };
    auto rows_acknowledged = [&] {
        return !restart_requested_ && first_unacknowledged_ >= log_.size() && in_flight_ == 0 &&
               std::none_of(pending_.begin(), pending_.end(),
                            [](const batch& b) { return !b.is_resolved; });
    };
    for (;;) {
        if (!changed_.wait_until(lock, deadline,
                                 [&] { return rows_acknowledged() || stopping_; }) ||
            stopping_) {
            return false;
        }
        if (!rows_acknowledged_at_) {
            rows_acknowledged_at_ = clock_type::now();
        }
        if (!settings_.resolved || !(resolved_acknowledged_ < last)) {
            if (owed_locked(fault::late_duplicate)) {
                // at_least_once: every acknowledged batch is covered now.
                (void)inject_late_locked();
            }
            return changed_.wait_until(lock, deadline, [&] { return idle() || stopping_; }) &&
                   !stopping_;
        }
        // The closing resolved timestamp; a restart drops it with everything else pending, so
        // it is queued again until one is acknowledged.
        if (idle() && closed_locked() < last) {
            // Every row is acknowledged; `last` is not closed yet.
            if (clock_type::now() >= deadline) {
                return false;
            }
            changed_.wait_for(lock, std::chrono::milliseconds(5));
            continue;
        }
        if (idle()) {
            // Every row is acknowledged: the checkpoint is saved before the resolved goes out.
            checkpoint_ = std::max(checkpoint_, last);
            for (hlc& c : range_checkpoints_) {
                c = std::max(c, last);
            }
            release_checkpointed_locked();
            if (owed_locked(fault::lost_resolved)) {
                // at_least_once: a run too short for a resolved emission still loses one.
                fired_[static_cast<size_t>(fault::lost_resolved)] = true;
                ++stats_.lost_resolved;
                request_restart_locked();
                continue;
            }
            batch r;
            r.is_resolved = true;
            r.resolved = last;
            r.body = proto::encode_resolved(last);
            resolved_sent_ = std::max(resolved_sent_, last);
            enqueue_locked(std::move(r));
        }
        if (!changed_.wait_until(lock, deadline,
                                 [&] {
                                     return stopping_ || !(resolved_acknowledged_ < last) ||
                                            restart_requested_ || idle();
                                 }) ||
            stopping_) {
            return false;
        }
    }
}

sender_stats sender::stats() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
}

std::string sender::last_error() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return last_error_;
}

hlc sender::high_water() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return checkpoint_;
}

std::optional<std::chrono::steady_clock::time_point> sender::rows_acknowledged_at() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return rows_acknowledged_at_;
}

hlc sender::acknowledged_resolved() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return resolved_acknowledged_;
}

}  // namespace molt::emulator
