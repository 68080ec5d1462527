// Fuzz target: the CNI environment (ParseEnvironment: CNI_COMMAND,
// CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS, CNI_PATH) and CNI_ARGS on
// its own (ParseCniArgs).
//
// Input: "KEY=VALUE" lines, as a runtime's environment would be. Pairs with a
// NUL byte are dropped: execve() cannot pass them, so the plugin never sees
// one.
//
// Invariants of an accepted environment: the values the plugin echoes into
// JSON (the result's sandbox and interface name, the daemon request) encode
// with the JSON library's strict encoder -- the check whose absence once let
// a non-UTF-8 CNI_NETNS abort the plugin -- and the container ID and
// interface name obey libcni's rules. Also: FirstInvalidUtf8 agrees with the
// strict encoder on every input.
#include <cstdint>
#include <map>
#include <string>

#include "cni/json_text.h"
#include "cni/spec.h"
#include "common/strings.h"
#include "fuzz/fuzz_check.h"

using namespace terway;
using namespace terway::cni;

namespace {

// The strict encoder (error_handler strict) throws on text that is not UTF-8.
bool StrictDumps(const nlohmann::json& j) {
  try {
    (void)j.dump();
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)fuzz::ReportFd();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = fuzz::AsText(data, size);
  FUZZ_CHECK(FirstInvalidUtf8(text).has_value() != StrictDumps(nlohmann::json(std::string(text))),
             "FirstInvalidUtf8 disagrees with the JSON encoder");

  std::map<std::string, std::string> env;
  for (const std::string& line : Split(text, '\n', /*skip_empty=*/true)) {
    auto eq = line.find('=');
    if (eq == std::string::npos || line.find('\0') != std::string::npos) continue;
    env[line.substr(0, eq)] = line.substr(eq + 1);
  }

  auto args = ParseCniArgs(text);
  if (args.ok()) {
    for (const auto& [k, v] : args->all) FUZZ_CHECK(!k.empty(), "CNI_ARGS key is empty");
  }

  auto parsed = ParseEnvironment(env);
  if (!parsed.ok()) {
    (void)parsed.error().ToString();
    return 0;
  }
  const Environment& e = *parsed;
  FUZZ_CHECK(env.count("CNI_COMMAND") && ParseCommand(env["CNI_COMMAND"]) == e.command, "command");
  nlohmann::json echoed = {{"sandbox", e.netns},
                           {"name", e.ifname},
                           {"container_id", e.container_id},
                           {"cni_args", e.args.all},
                           {"pod", {e.args.pod_namespace, e.args.pod_name, e.args.pod_uid}},
                           {"path", e.path}};
  FUZZ_CHECK(StrictDumps(echoed), "an accepted environment does not encode as JSON");
  if (e.command == Command::kAdd || e.command == Command::kCheck || e.command == Command::kDel) {
    FUZZ_CHECK(ValidateContainerId(e.container_id).ok(), e.container_id);
    FUZZ_CHECK(ValidateInterfaceName(e.ifname).ok(), e.ifname);
    FUZZ_CHECK(!e.path.empty(), "CNI_PATH");
    FUZZ_CHECK(e.command == Command::kDel || !e.netns.empty(), "CNI_NETNS");
  }
  return 0;
}
