#include "netlink/sysctl.h"

#include <fcntl.h>
#include <unistd.h>

#include "common/strings.h"
#include "netlink/netns.h"

namespace terway::netlink {

Result<std::string> SysctlPath(const std::string& key) {
  std::string rel = key;
  if (rel.find('/') == std::string::npos) {
    for (char& c : rel) {
      if (c == '.') c = '/';
    }
  }
  while (!rel.empty() && rel.front() == '/') rel.erase(0, 1);
  if (!StartsWith(rel, "net/") || rel.find("..") != std::string::npos) {
    return Errorf(ErrorCode::kInvalidArgument, "sysctl '{}' is not a network sysctl", key);
  }
  return "/proc/sys/" + rel;
}

namespace {

Status WriteFile(const std::string& path, const std::string& value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return SysError("opening " + path);
  std::string v = value + "\n";
  ssize_t n = write(fd, v.data(), v.size());
  int err = errno;
  close(fd);
  if (n < 0) return SysError("writing '" + value + "' to " + path, err);
  return Ok();
}

Result<std::string> ReadFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return SysError("opening " + path);
  std::string out;
  char buf[256];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      int err = errno;
      close(fd);
      return SysError("reading " + path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return std::string(Trim(out));
}

}  // namespace

Status SetSysctl(const std::string& netns, const std::string& key, const std::string& value) {
  TERWAY_ASSIGN_OR_RETURN(std::string path, SysctlPath(key));
  if (netns.empty()) return WriteFile(path, value);
  Status s = RunInNetns(netns, [&] { return WriteFile(path, value); });
  if (!s.ok()) return std::move(s).error().Wrap("in namespace " + netns);
  return Ok();
}

Result<std::string> GetSysctl(const std::string& netns, const std::string& key) {
  TERWAY_ASSIGN_OR_RETURN(std::string path, SysctlPath(key));
  if (netns.empty()) return ReadFile(path);
  std::string out;
  Status s = RunInNetns(netns, [&]() -> Status {
    TERWAY_ASSIGN_OR_RETURN(out, ReadFile(path));
    return Ok();
  });
  if (!s.ok()) return std::move(s).error().Wrap("in namespace " + netns);
  return out;
}

}  // namespace terway::netlink
