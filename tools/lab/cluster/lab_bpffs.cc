#include "tools/lab/cluster/lab_bpffs.h"

#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <sstream>

#include <fmt/format.h>

#include "tools/lab/cluster/lab_files.h"

namespace terway::lab {

namespace {

// mountinfo writes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isdigit(static_cast<unsigned char>(s[i + 2])) && std::isdigit(static_cast<unsigned char>(s[i + 3]))) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool IsAtOrUnder(const std::string& path, const std::string& root) {
  return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                          path[root.size()] == '/');
}

}  // namespace

std::vector<std::string> BpfMountsUnder(const std::string& mountinfo, const std::string& root) {
  std::vector<std::string> out;
  std::istringstream in(mountinfo);
  for (std::string line; std::getline(in, line);) {
    // id parent major:minor root mount-point options [optional...] - fstype source super-options
    std::istringstream f(line);
    std::vector<std::string> fields;
    for (std::string w; f >> w;) fields.push_back(w);
    auto dash = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 5 || dash == fields.end() || dash + 1 == fields.end()) continue;
    if (*(dash + 1) != "bpf") continue;
    std::string mp = Unescape(fields[4]);
    if (IsAtOrUnder(mp, root) && std::find(out.begin(), out.end(), mp) == out.end()) out.push_back(mp);
  }
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return out;
}

Status EnsureBpffs(const std::string& dir) {
  TERWAY_TRY(MakePrivateDirs(dir));
  if (!BpfMountsUnder(ReadTextFile("/proc/self/mountinfo"), dir).empty()) return Ok();
  if (mount("bpf", dir.c_str(), "bpf", 0, "mode=0700") != 0) {
    return SysError(fmt::format("mounting a bpf filesystem on {} for the node's eBPF datapath (the kernel needs "
                                "CONFIG_BPF_SYSCALL; or start the lab with --eniip-virtual-type veth)",
                                dir));
  }
  return Ok();
}

Status UnmountBpffsUnder(const std::string& root) {
  std::string first_error;
  // Mounted twice on one point (e.g. by the lab and by a loader) shows twice
  // in mountinfo under one name: unmount until none is left.
  for (int round = 0; round < 4; round++) {
    auto mounts = BpfMountsUnder(ReadTextFile("/proc/self/mountinfo"), root);
    if (mounts.empty()) break;
    for (const auto& mp : mounts) {
      if (umount2(mp.c_str(), MNT_DETACH) != 0 && errno != EINVAL && first_error.empty()) {
        first_error = fmt::format("unmounting the bpf filesystem {}: {}", mp, std::strerror(errno));
      }
    }
  }
  for (const auto& mp : BpfMountsUnder(ReadTextFile("/proc/self/mountinfo"), root)) {
    if (first_error.empty()) first_error = "bpf filesystem " + mp + " is still mounted";
  }
  if (!first_error.empty()) {
    return Errorf(ErrorCode::kInternal, "{}; unmount it by hand (umount -l) before removing the lab directory",
                  first_error);
  }
  return Ok();
}

}  // namespace terway::lab
