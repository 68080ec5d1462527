// A stand-in for two of the binaries terway-lab drives, for the lab's trust
// tests. The test installs it under the real names in a directory of its
// own (TERWAY_LAB_BIN_DIR), next to symlinks to the real binaries, and
// steers it with files in that directory (<dir> = the directory of argv[0]):
//
// as `terway` (the CNI plugin, run by a kubelet or by terway-lab):
//   - first writes the descriptors it was started with, other than 0-2, to
//     <dir>/fds/<CNI_COMMAND>-<pod>-<pid> (empty when it inherited none);
//   - an ADD of a pod named stuck-* writes its pid to <dir>/stuck-<pod>.pid
//     and waits for <dir>/release-<pod> (at most 100 s), then fails with a
//     CNI error: a plugin that hangs for as long as the test wants;
//   - everything else execs the real plugin, <dir>/terway.real, with the
//     same arguments, environment and (unread) stdin.
// as `terway-cli` (run by `up` for max pods): writes <dir>/up-gated, waits
// for <dir>/release-up (at most 100 s), then execs <dir>/terway-cli.real: an
// `up` that stays in progress for as long as the test wants.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

std::string DirOf(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string BaseOf(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

void WriteFile(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  ssize_t ignored = write(fd, text.data(), text.size());
  (void)ignored;
  close(fd);
}

// "3 -> socket:[123]\n..." for every descriptor but 0-2 and the listing's own.
std::string InheritedDescriptors() {
  std::string out;
  DIR* d = opendir("/proc/self/fd");
  if (!d) return "cannot list /proc/self/fd\n";
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    int fd = std::atoi(e->d_name);
    if (fd <= 2 || fd == dirfd(d)) continue;
    char target[512] = {};
    std::string link = std::string("/proc/self/fd/") + e->d_name;
    if (readlink(link.c_str(), target, sizeof target - 1) < 0) std::strcpy(target, "?");
    out += std::to_string(fd) + " -> " + target + "\n";
  }
  closedir(d);
  return out;
}

std::string PodName() {
  const char* args = std::getenv("CNI_ARGS");
  std::string a = args ? args : "";
  auto pos = a.find("K8S_POD_NAME=");
  if (pos == std::string::npos) return "unknown";
  std::string name = a.substr(pos + 13);
  return name.substr(0, name.find(';'));
}

// Waits for the file to appear; false after 100 s.
bool WaitForFile(const std::string& path) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(100);
  while (access(path.c_str(), F_OK) != 0) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

int ExecReal(const std::string& real, char** argv) {
  argv[0] = const_cast<char*>(real.c_str());
  execv(real.c_str(), argv);
  std::fprintf(stderr, "lab_stand_in: cannot execute %s: %s\n", real.c_str(), std::strerror(errno));
  return 127;
}

}  // namespace

int main(int argc, char** argv) {
  (void)argc;
  const std::string self = argv[0];
  const std::string dir = DirOf(self);
  const std::string role = BaseOf(self);
  if (role == "terway-cli") {
    WriteFile(dir + "/up-gated", std::to_string(getpid()) + "\n");
    WaitForFile(dir + "/release-up");
    return ExecReal(dir + "/terway-cli.real", argv);
  }
  // The CNI plugin.
  const std::string fds = InheritedDescriptors();
  const char* command_env = std::getenv("CNI_COMMAND");
  const std::string command = command_env ? command_env : "NONE";
  const std::string pod = PodName();
  WriteFile(dir + "/fds/" + command + "-" + pod + "-" + std::to_string(getpid()), fds);
  if (command == "ADD" && pod.rfind("stuck-", 0) == 0) {
    WriteFile(dir + "/stuck-" + pod + ".pid", std::to_string(getpid()) + "\n");
    bool released = WaitForFile(dir + "/release-" + pod);
    std::printf(R"({"cniVersion":"1.0.0","code":11,"msg":"%s"})",
                released ? "released by the test" : "the test never released the stuck ADD");
    return 1;
  }
  return ExecReal(dir + "/terway.real", argv);
}
