// Files of the lab. lab.json and world.yaml hold the emulated cloud's access
// key, the kubeconfigs reach the API, eni.json is a node's cloud config, and
// logs can carry tokens: everything the lab writes is owner-only, 0600 for
// files and 0700 for directories, from the instant it exists. Files are
// created with that mode (O_CREAT|O_EXCL), never chmod'ed afterwards, so no
// other user can open one in between; TightenLabFiles is for what an older
// terway-lab left behind.
//
// Every descriptor here is close-on-exec: the lab runs the CNI plugin and
// daemons from threads of a process that has these files open.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/result.h"

namespace terway::lab {

inline constexpr mode_t kPrivateFileMode = 0600;
inline constexpr mode_t kPrivateDirMode = 0700;

// What the lab writes into its directory (`down` removes exactly these, in
// this order; nodes/ and vpcsim/ are directories).
inline constexpr const char* kLabFileNames[] = {
    "lab.json",          "lab.json.tmp",        "world.yaml", "world.yaml.tmp", "kubeconfig",
    "control-plane.log", "control-plane.ready", "control-plane.ready.tmp", "vpcsim.log", "vpcsim.port",    "vpcsim.port.tmp",
    "nodes",             "vpcsim",              "lab.lock",   "lifecycle.lock"};  // the locks last

// The whole file; "" when it cannot be read.
std::string ReadTextFile(const std::string& path);
// The file's last `lines` lines, each indented "    | ", for an error message
// that quotes a daemon's log.
std::string QuoteLogTail(const std::string& path, size_t lines = 15);
// `s` without trailing newlines, spaces and carriage returns (a command's output).
std::string TrimTrailing(std::string s);
// Writes via "<path>.tmp" (created 0600, exclusively) and rename, so a reader
// never sees half a file. One writer per path at a time (callers hold the lock
// that guards the file).
Status WriteTextFileAtomic(const std::string& path, const std::string& content);
// mkdir -p: the directories it creates are 0700; existing ones stay as they are.
Status MakePrivateDirs(const std::string& dir);
// A log opened for appending (O_CLOEXEC), created 0600.
Result<int> OpenPrivateLog(const std::string& path);
// Takes group and other permissions away from the lab directory and what
// the lab wrote into it (recursively for nodes/ and vpcsim/), as left by an
// older terway-lab. Symbolic links are not followed; other files of a --lab
// directory are left alone (the directory's 0700 already hides them).
Status TightenLabFiles(const std::string& lab_dir);

// An exclusive flock(2) on a lock file (created 0600), released when the
// object goes. `down` removes the lab directory with its lock files: a waiter
// that then gets the lock of a removed file opens the file again, so two
// holders never hold locks on two different files of one name.
class FileLock {
 public:
  static Result<FileLock> Acquire(const std::string& path);
  FileLock(FileLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock();

 private:
  FileLock() = default;
  int fd_ = -1;
};

}  // namespace terway::lab
