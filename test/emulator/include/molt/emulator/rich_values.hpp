#pragma once
// The `rich` profile's values: what real data has and the standard values miss. Each is
// PostgreSQL text, as the generator keeps every value, and each is deterministic for a seed.
//
//   STRING       multi-byte UTF-8 (2-, 3- and 4-byte characters, combining marks, ZWJ emoji,
//                right-to-left text), quotes and backslashes, empty strings (NULL comes from
//                the generator's null rate, so both occur)
//   TEXT         the same, and now and then a long value of 60 000-70 000 bytes (around 64 KiB)
//   JSONB        top-level strings, numbers, true, false, JSON null, arrays and objects
//                (empty and nested)
//   DATE         before 1970 and after 2100 (years 1000-9999: what MySQL stores), leap days
//   TIMESTAMPTZ  non-zero UTC offsets (+05:30, -08, +14, +05:45, ...) and nanoseconds; instants
//                1970-2038 when portable (MySQL TIMESTAMP), 1900-2200 otherwise
//   TIMESTAMP    nanoseconds, 1900-2200
//   DECIMAL(p,s) both ends (±99...9.9...9), zero and negative zero with the full scale, the
//                smallest step (±0.0...1), and random values
//
// No fraction of a timestamp ends in exactly 500 ns: PostgreSQL rounds nanoseconds to
// microseconds through a double, so an exact tie would have no single right answer.
//
// Any other column gets random_value()'s standard values.

#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "molt/emulator/spec.hpp"

namespace molt::emulator {

/// A uniformly distributed integer in [lo, hi].
template <typename T>
T uniform(std::mt19937_64& rng, T lo, T hi) {
    return std::uniform_int_distribution<T>(lo, hi)(rng);
}

/// A value of the column's type as PostgreSQL prints it (never NULL). `portable` keeps to
/// values MySQL stores too.
[[nodiscard]] std::optional<std::string> rich_value(const column_spec& c, std::mt19937_64& rng,
                                                    bool portable);

/// A value for a UNIQUE column: distinct under every collation (lower-case ASCII), built from
/// `serial`, which the caller never repeats.
[[nodiscard]] std::string unique_text(uint64_t serial, std::mt19937_64& rng);

/// The parts of rich_value, for tests.
[[nodiscard]] std::string rich_text(std::mt19937_64& rng);
[[nodiscard]] std::string long_text(std::mt19937_64& rng);
[[nodiscard]] std::string rich_json(std::mt19937_64& rng);
[[nodiscard]] std::string rich_date(std::mt19937_64& rng);
[[nodiscard]] std::string rich_timestamp(std::mt19937_64& rng, bool with_zone, bool portable);
[[nodiscard]] std::string rich_decimal(const column_spec& c, std::mt19937_64& rng);

}  // namespace molt::emulator
