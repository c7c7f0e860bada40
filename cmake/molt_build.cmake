# Project-wide compile settings and the helpers every directory uses:
#   molt_cc_library(NAME x SRCS ... [DEPS ...] [PUBLIC_DEPS ...])  -> target molt_x, alias molt::x
#   molt_test(NAME x SRCS ... LABELS ... [DEPS ...])                 -> Catch2 tests registered in CTest

find_program(MOLT_CCACHE ccache)
if(MOLT_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
    set(CMAKE_CXX_COMPILER_LAUNCHER "${MOLT_CCACHE}")
endif()

set(MOLT_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
    -Wcast-align -Woverloaded-virtual -Wimplicit-fallthrough)
if(MOLT_WERROR)
    list(APPEND MOLT_WARNINGS -Werror)
endif()

# Boost 1.74's <boost/asio/awaitable.hpp> uses std::exchange without including <utility>; with
# GCC 12 in C++20 mode that is a hard error. Force-include <utility> everywhere.
add_compile_options("SHELL:-include utility")

if(MOLT_FUZZ)
    # Coverage instrumentation for every library, so libFuzzer is guided through our code; the
    # fuzz targets themselves link the libFuzzer driver (-fsanitize=fuzzer).
    add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize=vptr
        -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
    add_link_options(-fsanitize=address,undefined -fno-sanitize=vptr)
elseif(MOLT_SANITIZE)
    # vptr is off: SOCI is built with hidden visibility and the vptr check needs its typeinfo.
    add_compile_options(-fsanitize=address,undefined -fno-sanitize=vptr -fno-omit-frame-pointer
        -fno-sanitize-recover=undefined)
    add_link_options(-fsanitize=address,undefined -fno-sanitize=vptr)
endif()

function(molt_cc_library)
    cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;PUBLIC_DEPS" ${ARGN})
    add_library(molt_${ARG_NAME} STATIC ${ARG_SRCS})
    add_library(molt::${ARG_NAME} ALIAS molt_${ARG_NAME})
    target_compile_options(molt_${ARG_NAME} PRIVATE ${MOLT_WARNINGS})
    target_include_directories(molt_${ARG_NAME} PUBLIC
        $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>)
    target_link_libraries(molt_${ARG_NAME} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_DEPS})
endfunction()

function(molt_executable)
    cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
    add_executable(${ARG_NAME} ${ARG_SRCS})
    target_compile_options(${ARG_NAME} PRIVATE ${MOLT_WARNINGS})
    target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
    set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/bin")
endfunction()

# Each Catch2 test case becomes one CTest test carrying LABELS (unit, integration, e2e, fuzz).
# Exit code 77 means "skipped" (an integration test whose server is absent outside CI).
function(molt_test)
    # RESOURCE_LOCK: a name for what the test cases share (e.g. tables of the test database),
    # so CTest runs them one at a time.
    # ENVIRONMENT: VAR=value settings for every test case.
    cmake_parse_arguments(ARG "" "NAME;RESOURCE_LOCK" "SRCS;DEPS;LABELS;ENVIRONMENT" ${ARGN})
    add_executable(${ARG_NAME} ${ARG_SRCS})
    target_compile_options(${ARG_NAME} PRIVATE ${MOLT_WARNINGS})
    target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} Catch2::Catch2WithMain)
    set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/tests")
    set(lock "")
    if(ARG_RESOURCE_LOCK)
        set(lock RESOURCE_LOCK "${ARG_RESOURCE_LOCK}")
    endif()
    set(environment "")
    if(ARG_ENVIRONMENT)
        set(environment ENVIRONMENT "${ARG_ENVIRONMENT}")
    endif()
    catch_discover_tests(${ARG_NAME}
        TEST_PREFIX "${ARG_NAME}: "
        PROPERTIES LABELS "${ARG_LABELS}" SKIP_RETURN_CODE 77 ${lock} ${environment}
        EXTRA_ARGS --use-colour no)
endfunction()
