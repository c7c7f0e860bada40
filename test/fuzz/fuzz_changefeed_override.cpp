// libFuzzer target: the --changefeeds-path file and webhook_sink_config JSON.
#include <cstddef>
#include <cstdint>
#include <string>

#include "molt/proto/changefeed_override.hpp"
#include "molt/proto/sink_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string input(reinterpret_cast<const char*>(data), size);
    (void)molt::proto::parse_changefeed_override(input);
    (void)molt::proto::webhook_sink_config::parse(input);
    (void)molt::proto::sink_query::parse(input);
    return 0;
}
