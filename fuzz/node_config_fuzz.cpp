// libFuzzer target for the node's TOML configuration loader. Whatever the bytes, the loader
// must not crash, and every outcome is either a configuration that passes validate() and survives
// render -> parse unchanged, or an invalid_argument error whose message names the file (and so
// a field or a line:column after it).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "transport/config/node_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace anya::transport;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::filesystem::path file = "/fuzz/node.toml";
  const anya::Result<NodeConfig> config = parse_node_config(text, file);
  if (!config.is_ok()) {
    ANYA_ASSERT(config.status().code() == anya::Errc::invalid_argument);
    ANYA_ASSERT(config.status().message().rfind("node.toml:", 0) == 0);
    ANYA_ASSERT(config.status().message().size() > 11);  // says what is wrong
    return 0;
  }
  ANYA_ASSERT(validate(*config).is_ok());
  const std::string rendered = render_node_config(*config, "/fuzz");
  const anya::Result<NodeConfig> again = parse_node_config(rendered, file);
  ANYA_ASSERT(again.is_ok());
  ANYA_ASSERT(render_node_config(*again, "/fuzz") == rendered);
  return 0;
}
