#pragma once
// SQL identifiers: quoting per dialect, qualified names, and case-insensitive matching.
//
// Quoting always quotes, so reserved words and mixed case are safe:
//   PostgreSQL/CockroachDB  "my ""table"""      Oracle  "MY_TABLE"      MySQL  `my ``table```
// Matching between changefeed names (as CockroachDB writes them) and target catalog names is
// case-insensitive by ASCII folding, as the original replicator does; Unicode letters compare
// exactly.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "molt/common/dialect.hpp"
#include "molt/common/result.hpp"

namespace molt {

/// The identifier quoted for the dialect, with embedded quote characters doubled.
[[nodiscard]] std::string quote_ident(std::string_view name, dialect d);

/// True when a and b are equal ignoring ASCII case.
[[nodiscard]] bool ident_equal(std::string_view a, std::string_view b) noexcept;

/// A map key under which case-insensitively equal identifiers collide (ASCII lower case).
[[nodiscard]] std::string ident_key(std::string_view name);

/// How the dialect stores an unquoted identifier: lower case (PostgreSQL), upper case
/// (Oracle), unchanged (MySQL).
[[nodiscard]] std::string fold_unquoted(std::string_view name, dialect d);

/// Checks that a name can be an identifier of the dialect: not empty, no NUL byte, valid
/// UTF-8, and within the dialect's length limit (PostgreSQL 63 bytes, MySQL 64 characters,
/// Oracle 128 bytes).
[[nodiscard]] result<void> validate_ident(std::string_view name, dialect d);

/// A dotted name such as db.schema.table; each part is kept unquoted.
struct qualified_name {
    std::vector<std::string> parts;

    /// Each part quoted for the dialect, joined by '.'.
    [[nodiscard]] std::string quoted(dialect d) const;
    /// Parts joined by '.', unquoted (for logs and messages).
    [[nodiscard]] std::string to_string() const;
    /// Parts joined by '.', a part that holds '.' or '"' (or is empty) in double quotes with '"'
    /// doubled: one text per name ("a.b".c vs a."b.c"). Staging names its checkpoint groups so,
    /// and molt finds them by it.
    [[nodiscard]] std::string unambiguous() const;
    [[nodiscard]] bool equal_ignoring_case(const qualified_name& other) const noexcept;
};

/// Parses "a.b.c" where each part is bare or quoted ("x.y" for PostgreSQL and Oracle, `x.y`
/// for MySQL; doubled quotes inside). Bare parts are folded as the dialect folds them when
/// fold is true, and kept as written otherwise. Between min_parts and max_parts parts.
[[nodiscard]] result<qualified_name> parse_qualified_name(std::string_view text, dialect d,
                                                          size_t min_parts, size_t max_parts,
                                                          bool fold = false);

}  // namespace molt
