#include "tools/lab/cluster/lab_files.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

namespace terway::lab {

namespace fs = std::filesystem;

std::string ReadTextFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string s;
  char buf[8192];
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    s.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return s;
}

std::string QuoteLogTail(const std::string& path, size_t lines) {
  std::string text = ReadTextFile(path);
  size_t pos = text.size();
  for (size_t n = 0; n <= lines && pos > 0; n++) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
  }
  std::string t = text.substr(pos == 0 ? 0 : pos + 1);
  std::string out;
  size_t start = 0;
  while (start < t.size()) {
    size_t nl = t.find('\n', start);
    out += "    | " + t.substr(start, nl == std::string::npos ? std::string::npos : nl - start) + "\n";
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return out.empty() ? "    | (empty)\n" : out;
}

std::string TrimTrailing(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

Status WriteTextFileAtomic(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  // A leftover temp file (an interrupted write, or an older terway-lab's
  // 0644 one) goes first: O_EXCL then guarantees the file we fill is ours,
  // created with our mode.
  if (unlink(tmp.c_str()) != 0 && errno != ENOENT) return SysError("removing the stale " + tmp);
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, kPrivateFileMode);
  if (fd < 0) return SysError("creating " + tmp);
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Error e = SysError("writing " + tmp);
      close(fd);
      unlink(tmp.c_str());
      return e;
    }
    off += static_cast<size_t>(n);
  }
  if (close(fd) != 0) {
    Error e = SysError("writing " + tmp);
    unlink(tmp.c_str());
    return e;
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    Error e = SysError("renaming " + tmp + " to " + path);
    unlink(tmp.c_str());
    return e;
  }
  return Ok();
}

Status MakePrivateDirs(const std::string& dir) {
  if (dir.empty()) return Errorf(ErrorCode::kInvalidArgument, "no directory to create");
  struct stat st {};
  if (stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Ok();
    return Errorf(ErrorCode::kAlreadyExists, "cannot create directory {}: a file of that name exists", dir);
  }
  std::string parent = fs::path(dir).parent_path().string();
  if (!parent.empty() && parent != dir) TERWAY_TRY(MakePrivateDirs(parent));
  if (mkdir(dir.c_str(), kPrivateDirMode) != 0 && errno != EEXIST) {
    return SysError("cannot create directory " + dir);
  }
  return Ok();
}

Result<int> OpenPrivateLog(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, kPrivateFileMode);
  if (fd < 0) return SysError("opening log " + path);
  return fd;
}

namespace {

// Group and other permissions off one file or directory; symlinks untouched.
Status TightenOne(const fs::path& p) {
  struct stat st {};
  if (lstat(p.c_str(), &st) != 0) {
    if (errno == ENOENT) return Ok();
    return SysError("reading the mode of " + p.string());
  }
  if (S_ISLNK(st.st_mode) || (st.st_mode & 077) == 0) return Ok();
  if (fchmodat(AT_FDCWD, p.c_str(), st.st_mode & 07700, 0) != 0) {
    return SysError("making " + p.string() + " owner-only");
  }
  return Ok();
}

}  // namespace

Status TightenLabFiles(const std::string& lab_dir) {
  TERWAY_TRY(TightenOne(lab_dir));
  for (const char* name : kLabFileNames) {
    fs::path p = fs::path(lab_dir) / name;
    TERWAY_TRY(TightenOne(p));
    std::error_code ec;
    if (!fs::is_directory(fs::symlink_status(p, ec))) continue;
    // The iterator does not descend into symlinked directories by default.
    for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      TERWAY_TRY(TightenOne(it->path()));
    }
    if (ec) return Errorf(ErrorCode::kInternal, "walking {}: {}", p.string(), ec.message());
  }
  return Ok();
}

Result<FileLock> FileLock::Acquire(const std::string& path) {
  while (true) {
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, kPrivateFileMode);
    if (fd < 0) return SysError("opening the lock " + path);
    int rc;
    do {
      rc = flock(fd, LOCK_EX);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      Error e = SysError("locking " + path);
      close(fd);
      return e;
    }
    // Still the file of that name? (Not removed or replaced while we waited.)
    struct stat held {}, now {};
    if (fstat(fd, &held) == 0 && stat(path.c_str(), &now) == 0 && held.st_dev == now.st_dev &&
        held.st_ino == now.st_ino) {
      FileLock l;
      l.fd_ = fd;
      return l;
    }
    close(fd);  // and again: the next open fails when the whole directory went
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) close(fd_);
}

}  // namespace terway::lab
