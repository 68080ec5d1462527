#include "netlink/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <future>
#include <memory>

#include "common/strings.h"
#include "netlink/handle.h"

namespace terway::netlink {

namespace {
constexpr const char* kNetnsRunDir = "/var/run/netns";

// Enters the namespace at path on the calling thread.
Status EnterNetns(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return SysError("opening network namespace " + path);
  int rc = setns(fd, CLONE_NEWNET);
  int err = errno;
  close(fd);
  if (rc != 0) return SysError("entering network namespace " + path, err);
  return Ok();
}
}  // namespace

std::string NetnsPath(const std::string& name_or_path) {
  if (name_or_path.find('/') != std::string::npos) return name_or_path;
  return std::string(kNetnsRunDir) + "/" + name_or_path;
}

bool NetnsExists(const std::string& name_or_path) {
  // A mounted namespace, not merely a path: a runtime that unmounts a
  // sandbox's namespace may leave the empty file behind, and that sandbox
  // is gone.
  struct statfs fs {};
  if (statfs(NetnsPath(name_or_path).c_str(), &fs) != 0) return false;
  return fs.f_type == static_cast<decltype(fs.f_type)>(NSFS_MAGIC) ||
         fs.f_type == static_cast<decltype(fs.f_type)>(PROC_SUPER_MAGIC);  // /proc/<pid>/ns/net
}

bool SameNetns(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  if (stat(NetnsPath(a).c_str(), &sa) == 0 && stat(NetnsPath(b).c_str(), &sb) == 0) {
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  }
  return NetnsPath(a) == NetnsPath(b);
}

Status CreateNamedNetns(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos) {
    return Errorf(ErrorCode::kInvalidArgument, "bad namespace name '{}'", name);
  }
  // Same layout as iproute2 so `ip netns exec` works on our namespaces.
  mkdir(kNetnsRunDir, 0755);
  // And the same mount discipline: the run directory is a shared mount point
  // (bind-mounted onto itself once), so a namespace mounted under it is seen
  // by every copy of the directory. Without this, the first `ip netns add`
  // or podman run after ours bind-mounts the directory over our mounts:
  // our namespaces then show as files that nobody can unmount or delete.
  bool bound = false;
  while (mount("", kNetnsRunDir, "none", MS_SHARED | MS_REC, nullptr) != 0) {
    if (errno != EINVAL || bound) return SysError(std::string("making ") + kNetnsRunDir + " a shared mount");
    if (mount(kNetnsRunDir, kNetnsRunDir, "none", MS_BIND | MS_REC, nullptr) != 0) {
      return SysError(std::string("bind-mounting ") + kNetnsRunDir + " onto itself");
    }
    bound = true;
  }
  std::string path = NetnsPath(name);
  int fd = open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (fd < 0) {
    if (errno == EEXIST) return Errorf(ErrorCode::kAlreadyExists, "namespace {} exists", name);
    return SysError("creating " + path);
  }
  close(fd);
  // unshare on a throwaway thread so the caller's namespace never changes.
  std::promise<Status> done;
  std::thread t([&] {
    if (unshare(CLONE_NEWNET) != 0) {
      done.set_value(SysError("unshare(CLONE_NEWNET)"));
      return;
    }
    std::string self = "/proc/self/task/" + std::to_string(gettid()) + "/ns/net";
    if (mount(self.c_str(), path.c_str(), "none", MS_BIND, nullptr) != 0) {
      done.set_value(SysError("bind-mounting namespace to " + path));
      return;
    }
    done.set_value(Ok());
  });
  t.join();
  Status s = done.get_future().get();
  if (!s.ok()) unlink(path.c_str());
  return s;
}

Status DeleteNamedNetns(const std::string& name) {
  std::string path = NetnsPath(name);
  if (umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return SysError("unmounting " + path);
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return SysError("removing " + path);
  return Ok();
}

Status RunInNetns(const std::string& name_or_path, const std::function<Status()>& fn) {
  Status result;
  std::thread t([&] {
    Status s = EnterNetns(NetnsPath(name_or_path));
    result = s.ok() ? fn() : s;
  });
  t.join();
  return result;
}

Status ProbeLinkKind(const std::string& kind) {
  Status result = Ok();
  // A thread of its own in a namespace of its own: nothing of the probe is
  // ever visible to the caller, and the namespace dies with the thread.
  std::thread t([&] {
    if (unshare(CLONE_NEWNET) != 0) {
      result = SysError("unshare(CLONE_NEWNET) for probing " + kind);
      return;
    }
    auto h = Handle::Open();
    if (!h.ok()) {
      result = std::move(h).error();
      return;
    }
    VethSpec v;
    v.name = "probe0";
    v.peer_name = "probe1";
    if (Status s = h->CreateVeth(v); !s.ok()) {
      result = std::move(s).error().Wrap("probing " + kind);
      return;
    }
    auto parent = h->GetLink("probe0");
    if (!parent.ok()) {
      result = std::move(parent).error();
      return;
    }
    result = h->CreateChildLink("probe2", kind, parent->index);
  });
  t.join();
  return result;
}

Result<std::thread> SpawnInNetns(const std::string& name_or_path, std::function<void()> fn) {
  // Shared ownership: set_value may still be returning on the new thread when
  // this function has already returned and would destroy a stack promise.
  auto entered = std::make_shared<std::promise<Status>>();
  auto fut = entered->get_future();
  std::string path = NetnsPath(name_or_path);
  std::thread t([path, fn = std::move(fn), entered]() mutable {
    Status s = EnterNetns(path);
    bool ok = s.ok();
    entered->set_value(std::move(s));
    entered.reset();
    if (ok) fn();
  });
  Status s = fut.get();
  if (!s.ok()) {
    t.join();
    return std::move(s).error();
  }
  return t;
}

}  // namespace terway::netlink
