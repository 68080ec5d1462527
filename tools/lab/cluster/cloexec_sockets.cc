// Every socket terway-lab's processes create is close-on-exec from the
// instant it exists, including those of libraries that have no option for
// it. The control plane runs CNI plugins from its kubelet threads while its
// API stand-in and API clients hold sockets on other threads; a plugin (or
// any other child) must never inherit one. Two libraries open sockets
// without SOCK_CLOEXEC and offer no hook to change that:
// - cpp-httplib 0.11 (Debian 12's libcpp-httplib) accepts every connection
//   with plain accept(2), and runs the handler later on a pool thread;
// - libcurl 7.88 creates a wakeup socketpair(2) for each transfer's multi
//   handle (its connection sockets come from CURLOPT_OPENSOCKETFUNCTION in
//   src/k8s, already close-on-exec).
// The definitions below interpose on those calls: the libraries call them
// through the PLT, and the executable's definitions come first in symbol
// lookup. They are linked into the lab's binaries as objects (lab_cloexec),
// because nothing in the lab names them and an archive member would be
// left out. Nothing in the lab hands a socket to a child through exec (a
// child's stdio is dup2'ed, which clears the flag), so no caller loses
// anything it relied on. The spawning code also makes every descriptor
// above stderr close-on-exec in the child (process.cc), a second line of
// defence for descriptors from elsewhere.
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

extern "C" {

__attribute__((visibility("default"))) int accept(int fd, struct sockaddr* __restrict addr,
                                                  socklen_t* __restrict len) {
  return accept4(fd, addr, len, SOCK_CLOEXEC);
}

// The system call itself: calling libc's socketpair would recurse into us.
__attribute__((visibility("default"))) int socketpair(int domain, int type, int protocol, int fds[2]) {
  return static_cast<int>(syscall(SYS_socketpair, domain, type | SOCK_CLOEXEC, protocol, fds));
}

}  // extern "C"
