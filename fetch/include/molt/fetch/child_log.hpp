#pragma once
// The replicator's log lines in molt's log. The replicator writes zerolog JSON lines (molt's own
// format); each is tagged with "process":"replicator" right after its level, secrets redacted,
// and filtered by molt's --logging level. In the console format, and for lines that are not
// JSON (a crash message, a sanitizer report), the line becomes a molt event with the same tag.

#include <string>
#include <string_view>

#include "molt/common/log.hpp"

namespace molt::fetch {

/// Writes one line of the child's output to `logger`.
void relay_child_line(log::logger& logger, std::string_view process, std::string_view line);

/// The JSON line with "process":"<process>" inserted after the level member; empty when the
/// line is not a zerolog JSON line (`level` read into `lvl` otherwise). Exposed for tests.
[[nodiscard]] std::string tag_json_line(std::string_view line, std::string_view process,
                                        log::level& lvl);

}  // namespace molt::fetch
