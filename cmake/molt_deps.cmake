# Third-party dependencies, all from Debian 12 packages (see test/support/deps.sh for the list).
find_package(Threads REQUIRED)
find_package(Boost 1.74 CONFIG REQUIRED COMPONENTS program_options filesystem system)
find_package(OpenSSL 3 REQUIRED)
find_package(fmt 9 CONFIG REQUIRED)
find_package(RapidJSON CONFIG REQUIRED)
find_package(PostgreSQL REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(MARIADB REQUIRED IMPORTED_TARGET libmariadb)
# unixODBC: the Oracle dialect's transport (SOCI odbc backend).
find_package(ODBC REQUIRED)
find_package(ZLIB REQUIRED)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
# JSON Web Tokens (the OpenSSL flavour: libjwt-dev, not libjwt-gnutls-dev).
pkg_check_modules(LIBJWT REQUIRED IMPORTED_TARGET libjwt)
# Prometheus metrics registry and text exposition (Beast serves the endpoint).
find_package(prometheus-cpp CONFIG REQUIRED)

# RapidJSON ships no target, only an include directory.
if(NOT TARGET molt_rapidjson)
    add_library(molt_rapidjson INTERFACE)
    target_include_directories(molt_rapidjson SYSTEM INTERFACE ${RAPIDJSON_INCLUDE_DIRS})
    # std::string support and exact numbers are requested explicitly where they are used.
    add_library(RapidJSON::RapidJSON ALIAS molt_rapidjson)
endif()

# SOCI 4.0.3 in Debian has neither a CMake config nor a pkg-config file.
find_path(SOCI_INCLUDE_DIR soci/soci.h REQUIRED)
function(molt_import_soci name lib)
    find_library(SOCI_${name}_LIBRARY ${lib} REQUIRED)
    add_library(SOCI::${name} UNKNOWN IMPORTED)
    set_target_properties(SOCI::${name} PROPERTIES
        IMPORTED_LOCATION "${SOCI_${name}_LIBRARY}"
        INTERFACE_INCLUDE_DIRECTORIES "${SOCI_INCLUDE_DIR}")
endfunction()
molt_import_soci(core soci_core)
molt_import_soci(postgresql soci_postgresql)
molt_import_soci(mysql soci_mysql)
molt_import_soci(odbc soci_odbc)
target_link_libraries(SOCI::core INTERFACE ${CMAKE_DL_LIBS})
target_link_libraries(SOCI::postgresql INTERFACE SOCI::core PostgreSQL::PostgreSQL)
target_link_libraries(SOCI::mysql INTERFACE SOCI::core PkgConfig::MARIADB)
target_link_libraries(SOCI::odbc INTERFACE SOCI::core ODBC::ODBC)

if(MOLT_BUILD_TESTS)
    find_package(Catch2 2 CONFIG REQUIRED)
    include(Catch)
endif()
