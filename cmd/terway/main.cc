// terway: the CNI plugin. Gathers the process state and hands it to
// cni::RunPlugin; everything it prints on stdout is the CNI answer.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <exception>
#include <string>

#include "cni/plugin.h"
#include "cni/result.h"

extern char** environ;

namespace {

// Reads all of stdin; VERSION may come with nothing on stdin at all.
bool ReadStdin(std::string* out) {
  char buf[16384];
  while (true) {
    ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
    if (n > 0) {
      out->append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) return true;
    if (errno == EINTR) continue;
    return errno == EBADF;  // no stdin at all: treat as empty
  }
}

int Main() {
  terway::cni::Invocation inv;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) inv.env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  auto cmd = inv.env.find("CNI_COMMAND");
  bool is_version = cmd != inv.env.end() && cmd->second == "VERSION";
  if (!is_version && !ReadStdin(&inv.stdin_data)) {
    std::fputs("{\"cniVersion\":\"1.1.0\",\"code\":5,\"msg\":\"error reading network configuration from stdin\"}\n",
               stdout);
    return 1;
  }
  if (cmd == inv.env.end()) {
    // Run by hand: say what this is on stderr, as CNI plugins do.
    std::fputs("terway: CNI plugin of Terway in C++; CNI protocol versions supported: 0.3.1, 0.4.0, 1.0.0, 1.1.0\n",
               stderr);
  }
  terway::cni::Outcome out = terway::cni::RunPlugin(
      inv, [](const std::string& socket, std::chrono::milliseconds timeout) {
        return terway::cni::MakeUnixDaemonClient(socket, timeout);
      });
  if (!out.stdout_text.empty()) {
    std::fwrite(out.stdout_text.data(), 1, out.stdout_text.size(), stdout);
    std::fputc('\n', stdout);
  }
  if (std::fflush(stdout) != 0) return 1;
  return out.exit_code;
}

// The last line of defence: RunPlugin turns every input it knows to be bad
// into a CNI error, and its fuzz targets (tests/fuzz) treat an escaping
// exception as a crash. Should one still escape (a bug, or std::bad_alloc),
// the runtime gets a CNI error it can log instead of a plugin killed by
// std::terminate with nothing on stdout.
void PrintInternalError(const char* what) {
  terway::cni::CniError e = terway::cni::MakeCniError(
      terway::cni::kDaemonFailure, "internal error in the terway plugin (a bug): " + std::string(what),
      "if terwayd had already answered, DEL releases what it holds; please report this");
  std::string text = terway::cni::RenderError(e, "1.1.0");
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

}  // namespace

int main() {
  try {
    return Main();
  } catch (const std::exception& e) {
    PrintInternalError(e.what());
  } catch (...) {
    PrintInternalError("unknown exception");
  }
  return 1;
}
