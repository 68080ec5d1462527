// Fuzz target: the whole plugin (RunPlugin), with everything a runtime and a
// daemon can hand it under the fuzzer's control: the environment, stdin, and
// terwayd's reply.
//
// Input: three parts separated by a line "----":
//   KEY=VALUE lines (the environment; "$NETNS" in a value stands for a file
//   the harness created, so ADD and CHECK can get past the netns check)
//   ----
//   stdin
//   ----
//   the daemon's reply frame, or "!unavailable" / "!timeout" / "!busy" for a
//   transport failure
//
// Invariants, whatever the input:
//   - no exception escapes, no sanitizer report;
//   - exit code 0 or 1; stdout empty or one JSON value (strict: UTF-8);
//   - on failure, stdout is a CNI error object with a code and a message;
//   - every request the plugin sends, terwayd can decode (as itself);
//   - an ADD that succeeds prints a result with an interface CNI_IFNAME in a
//     sandbox and with a MAC; DEL, CHECK, GC and STATUS print nothing.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "cni/plugin.h"
#include "cni/result.h"
#include "common/strings.h"
#include "fuzz/fuzz_check.h"

using namespace terway;
using namespace terway::cni;

namespace {

std::string& NetnsPath() {
  static std::string path;
  return path;
}

class ScriptedDaemon : public DaemonClient {
 public:
  explicit ScriptedDaemon(std::string reply) : reply_(std::move(reply)) {}
  Result<protocol::Reply> Call(const protocol::Request& req) override {
    // What the real client would put on the wire, read as terwayd reads it.
    const std::string frame = protocol::EncodeRequest(req);
    FUZZ_CHECK(frame.find('\n') == frame.size() - 1, "a request frame holds a raw newline");
    auto seen = protocol::DecodeRequest(frame);
    FUZZ_CHECK(seen.ok(), seen.ok() ? "" : seen.error().ToString() + " in " + frame.substr(0, 512));
    FUZZ_CHECK(*seen == req, frame.substr(0, 512));
    if (reply_ == "!unavailable") return Error(ErrorCode::kUnavailable, "connection refused");
    if (reply_ == "!timeout") return Error(ErrorCode::kTimeout, "timed out reading a frame");
    if (reply_ == "!busy") return Error(ErrorCode::kConflict, "accept queue full");
    return protocol::DecodeReply(reply_);
  }

 private:
  std::string reply_;
};

void Replace(std::string& s, std::string_view from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
}

std::string& NetnsDir() {
  static std::string dir;
  return dir;
}

void RemoveNetnsFile() {
  unlink(NetnsPath().c_str());
  rmdir(NetnsDir().c_str());
}

}  // namespace

// The stand-in netns is an empty file in $TMPDIR (run_fuzzer.sh points it
// into the run's own directory), removed when the run ends.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)fuzz::ReportFd();
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/terway-fuzz-plugin-XXXXXX";
  if (!mkdtemp(templ.data())) std::abort();
  NetnsDir() = templ;
  NetnsPath() = templ + "/netns";
  int fd = open(NetnsPath().c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) std::abort();
  close(fd);
  std::atexit(RemoveNetnsFile);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(fuzz::AsText(data, size));
  const size_t sep1 = input.find("\n----\n");
  if (sep1 == std::string::npos) return 0;
  const size_t sep2 = input.find("\n----\n", sep1 + 6);
  Invocation inv;
  const std::string env_text = input.substr(0, sep1);
  inv.stdin_data = input.substr(sep1 + 6, sep2 == std::string::npos ? std::string::npos : sep2 - sep1 - 6);
  const std::string reply = sep2 == std::string::npos ? "!unavailable" : input.substr(sep2 + 6);
  for (const std::string& line : Split(env_text, '\n', /*skip_empty=*/true)) {
    auto eq = line.find('=');
    // execve() cannot pass a NUL byte, nor a name with '=' (the first one ends it).
    if (eq == std::string::npos || eq == 0 || line.find('\0') != std::string::npos) continue;
    std::string value = line.substr(eq + 1);
    Replace(value, "$NETNS", NetnsPath());
    inv.env[line.substr(0, eq)] = value;
  }
  // The log would only slow the run (the runs close stderr anyway).
  inv.env.erase("TERWAY_CNI_LOG_LEVEL");

  int calls = 0;
  Outcome out = RunPlugin(inv, [&](const std::string& socket, std::chrono::milliseconds timeout) {
    calls++;
    FUZZ_CHECK(protocol::CheckSocketPath(socket).ok(), socket);
    FUZZ_CHECK(timeout.count() > 0, "timeout");
    return std::unique_ptr<DaemonClient>(new ScriptedDaemon(reply));
  });
  FUZZ_CHECK(out.exit_code == 0 || out.exit_code == 1, std::to_string(out.exit_code));
  FUZZ_CHECK(calls <= 1, "more than one request");
  if (out.exit_code == 1) {
    nlohmann::json e = fuzz::MustParse(out.stdout_text, "error");
    FUZZ_CHECK(e.is_object() && e["code"].is_number_integer() && e["msg"].is_string(), out.stdout_text);
    FUZZ_CHECK(e["code"].get<int64_t>() > 0, out.stdout_text);
    return 0;
  }
  auto cmd = ParseCommand(inv.env["CNI_COMMAND"]);
  FUZZ_CHECK(cmd.has_value(), "success without a command");
  if (*cmd == Command::kVersion) {
    FUZZ_CHECK(fuzz::MustParse(out.stdout_text, "version").contains("supportedVersions"), out.stdout_text);
  } else if (*cmd == Command::kAdd) {
    FUZZ_CHECK(calls == 1, "ADD succeeded without asking terwayd");
    auto result = ParseResult(fuzz::MustParse(out.stdout_text, "result"));
    FUZZ_CHECK(result.ok() && !result->ips.empty(), out.stdout_text);
    bool found = false;
    for (const auto& i : result->interfaces)
      found = found || (i.name == inv.env["CNI_IFNAME"] && !i.sandbox.empty() && !i.mac.empty());
    FUZZ_CHECK(found, "no interface " + inv.env["CNI_IFNAME"] + " in " + out.stdout_text);
  } else {
    FUZZ_CHECK(out.stdout_text.empty(), out.stdout_text);
    FUZZ_CHECK(calls == 1, "success without asking terwayd");
  }
  return 0;
}
