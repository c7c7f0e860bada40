#include "molt/common/ident.hpp"

#include <catch2/catch.hpp>

using molt::dialect;

TEST_CASE("ident: quoting per dialect doubles the quote character", "[ident]") {
    CHECK(molt::quote_ident("employees", dialect::postgres) == "\"employees\"");
    CHECK(molt::quote_ident("my \"table\"", dialect::postgres) == "\"my \"\"table\"\"\"");
    CHECK(molt::quote_ident("my `table`", dialect::mysql) == "`my ``table```");
    CHECK(molt::quote_ident("a\"b", dialect::mysql) == "`a\"b`");
    CHECK(molt::quote_ident("EMPLOYEES", dialect::oracle) == "\"EMPLOYEES\"");
    CHECK(molt::quote_ident("select", dialect::postgres) == "\"select\"");
}

TEST_CASE("ident: case-insensitive matching folds ASCII only", "[ident]") {
    CHECK(molt::ident_equal("Employees", "EMPLOYEES"));
    CHECK(molt::ident_equal("first_Name", "FIRST_name"));
    CHECK_FALSE(molt::ident_equal("employee", "employees"));
    CHECK_FALSE(molt::ident_equal("caf\xc3\xa9", "CAF\xc3\x89"));  // é vs É: exact for non-ASCII
    CHECK(molt::ident_key("MixedCase") == "mixedcase");
    CHECK(molt::fold_unquoted("MixedCase", dialect::postgres) == "mixedcase");
    CHECK(molt::fold_unquoted("MixedCase", dialect::oracle) == "MIXEDCASE");
    CHECK(molt::fold_unquoted("MixedCase", dialect::mysql) == "MixedCase");
}

TEST_CASE("ident: qualified names", "[ident]") {
    auto name =
        molt::parse_qualified_name("molt.\"Migration.Schema\".employees", dialect::postgres, 1, 3);
    REQUIRE(name);
    CHECK(name->parts == std::vector<std::string>{"molt", "Migration.Schema", "employees"});
    CHECK(name->quoted(dialect::postgres) == "\"molt\".\"Migration.Schema\".\"employees\"");
    CHECK(name->to_string() == "molt.Migration.Schema.employees");

    auto folded =
        molt::parse_qualified_name("Migration_Schema.\"Employees\"", dialect::oracle, 2, 2, true);
    REQUIRE(folded);
    CHECK(folded->parts == std::vector<std::string>{"MIGRATION_SCHEMA", "Employees"});

    auto mysql = molt::parse_qualified_name("`my``db`.t", dialect::mysql, 1, 2);
    REQUIRE(mysql);
    CHECK(mysql->parts == std::vector<std::string>{"my`db", "t"});

    auto a = molt::parse_qualified_name("DB.Public.T", dialect::postgres, 3, 3);
    auto b = molt::parse_qualified_name("db.public.t", dialect::postgres, 3, 3);
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->equal_ignoring_case(*b));
}

TEST_CASE("ident: malformed names", "[ident]") {
    struct bad_case {
        const char* input;
        dialect d;
        const char* message;
    };
    const bad_case cases[] = {
        {"", dialect::postgres, "bad name \"\": empty"},
        {"a..b", dialect::postgres, "bad name \"a..b\": empty part"},
        {"a.", dialect::postgres, "bad name \"a.\": ends with '.'"},
        {"\"abc", dialect::postgres, "bad name \"\"abc\": unterminated quote"},
        {"\"a\"b", dialect::postgres, "bad name \"\"a\"b\": expected '.' after a quoted part"},
        {"ab\"c", dialect::postgres, "bad name \"ab\"c\": a quote inside an unquoted part"},
        {"a.b.c.d", dialect::postgres, "bad name \"a.b.c.d\": expected 1 to 3 parts, found 4"},
        {"\xff", dialect::mysql, "bad name \"\xff\": identifier \"\xff\" is not valid UTF-8"},
    };
    for (const bad_case& c : cases) {
        INFO(c.input);
        auto parsed = molt::parse_qualified_name(c.input, c.d, 1, 3);
        REQUIRE_FALSE(parsed);
        CHECK(parsed.error().message() == c.message);
    }
}

TEST_CASE("ident: length limits per dialect", "[ident]") {
    CHECK(molt::validate_ident(std::string(63, 'a'), dialect::postgres));
    CHECK_FALSE(molt::validate_ident(std::string(64, 'a'), dialect::postgres));
    // MySQL counts characters: 64 two-byte characters are fine.
    std::string wide;
    for (int i = 0; i < 64; ++i) {
        wide += "\xc3\xa9";
    }
    CHECK(molt::validate_ident(wide, dialect::mysql));
    CHECK_FALSE(molt::validate_ident(wide + "x", dialect::mysql));
    CHECK(molt::validate_ident(std::string(128, 'A'), dialect::oracle));
    CHECK_FALSE(molt::validate_ident(std::string(129, 'A'), dialect::oracle));
    CHECK_FALSE(molt::validate_ident(std::string("a\0b", 3), dialect::postgres));
}
