// Network namespaces.
//
// A network namespace belongs to a thread, not a process (setns(2) changes the
// calling thread only). Work that must happen "inside" a namespace therefore
// runs on a dedicated thread that enters it and never returns to the pool:
// no other code on that thread can observe the switched namespace, and we never
// have to restore the original (restoring can fail, leaving a thread stranded).
// Sockets keep the namespace they were created in, so a listener created on
// such a thread serves that namespace for its whole life.
#pragma once

#include <functional>
#include <string>
#include <thread>

#include "common/result.h"

namespace terway::netlink {

// "/var/run/netns/<name>" for a bare name; a path is returned unchanged.
std::string NetnsPath(const std::string& name_or_path);

// Creates a named namespace (as `ip netns add` does: bind-mounted under
// /var/run/netns). kAlreadyExists if it exists.
Status CreateNamedNetns(const std::string& name);
// Removes a named namespace; success if it does not exist.
Status DeleteNamedNetns(const std::string& name);
// True when a network namespace is mounted there (nsfs), or it is a
// /proc/<pid>/ns/net of a live process.
bool NetnsExists(const std::string& name_or_path);
// True when both name the same namespace (same nsfs inode); paths that
// cannot be read compare by their text.
bool SameNetns(const std::string& a, const std::string& b);

// Runs fn on a fresh thread that has entered the namespace, waits for it and
// returns its status. The thread ends with fn.
Status RunInNetns(const std::string& name_or_path, const std::function<Status()>& fn);

// Whether this kernel can create links of `kind` (ipvlan, macvlan, ...):
// tries, on a veth, inside a private namespace that vanishes with the probe.
// Ok when it can; kUnsupported ("kernel lacks ipvlan ...") when it cannot.
Status ProbeLinkKind(const std::string& kind);

// Starts a long-lived thread inside the namespace running fn (e.g. an HTTP
// server loop). Returns once the thread has entered the namespace (or failed
// to). The caller joins the returned thread.
Result<std::thread> SpawnInNetns(const std::string& name_or_path, std::function<void()> fn);

}  // namespace terway::netlink
