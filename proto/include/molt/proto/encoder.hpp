#pragma once
// Encoding changefeed requests exactly as CockroachDB's v2 webhook sink sends them
// (changefeed-webhook.md §1.3, §2.2, §2.3, §2.6): for the CockroachDB stand-in and for tests.
//
//   row batch   {"payload":[<m1>,<m2>],"length":2}     frame compact, messages in CockroachDB's
//                                                      text form, joined by ','
//   message     {"after": {...}, "key": [...], "topic": "t", "updated": "<hlc>"}
//   resolved    {"resolved":"<hlc>"}   or, bare,   {"__crdb__":{"resolved":"<hlc>"}}

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "molt/common/hlc.hpp"
#include "molt/proto/batch.hpp"
#include "molt/proto/json.hpp"

namespace molt::proto {

enum class envelope { wrapped, bare };

/// Which optional parts CREATE CHANGEFEED ... WITH asked for.
struct message_options {
    bool updated = true;          ///< WITH updated
    bool diff = false;            ///< WITH diff: "before" is written (null when unknown)
    bool mvcc_timestamp = false;  ///< WITH mvcc_timestamp
    molt::proto::envelope envelope = envelope::wrapped;
};

struct message {
    std::string topic;
    json key = json::array();  ///< primary key values in PK order
    json after;                ///< the row object, or null for a delete
    json before;               ///< the previous row object, or null (written only with diff)
    hlc updated;
    hlc mvcc;
};

/// One message in CockroachDB's text form.
[[nodiscard]] std::string encode_message(const message& m, const message_options& options = {});

/// The request body for already-encoded messages.
[[nodiscard]] std::string encode_payload(std::span<const std::string> encoded_messages);

/// The request body of a resolved timestamp.
[[nodiscard]] std::string encode_resolved(hlc resolved, envelope env = envelope::wrapped);

/// A decoded value as a JSON tree (nested JSON is parsed back from its canonical text).
[[nodiscard]] json to_json(const value& v);

/// Appends a value as a userscript sees it: a number as a string of its exact text, unless
/// `json_column` (a bare number in a JSON column stays a number); JSON documents as their text.
void append_script_value(std::string& out, const value& v, bool json_column = false);

/// A decoded mutation as a message (topic given by the caller: mutations are grouped by it).
[[nodiscard]] message to_message(std::string_view topic, const mutation& m);

}  // namespace molt::proto
