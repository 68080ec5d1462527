// A node's own bpf filesystem. terwayd pins the eBPF datapath's maps under
// <--bpffs>/terway and its GC deletes entries it does not own, so two
// terwayds of one machine sharing /sys/fs/bpf would delete each other's
// pods' entries: each eBPF node of the lab gets a bpffs of its own, mounted
// by the lab at <node dir>/bpffs before its terwayd starts, and `down`
// unmounts every bpf filesystem under the lab directory (also one terwayd's
// loader mounted itself, also after a crash), which drops every pin with it.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace terway::lab {

// Mount points of bpf filesystems at or under `root` in a
// /proc/self/mountinfo text, deepest first (the order to unmount them).
// Pure: mountinfo's octal escapes (\040 for a space) are decoded.
std::vector<std::string> BpfMountsUnder(const std::string& mountinfo, const std::string& root);

// Creates `dir` (0700) and mounts a bpf filesystem on it (mode 0700) unless
// one is mounted there already (a `terwayd start` after a kill).
Status EnsureBpffs(const std::string& dir);

// Unmounts (lazily: a terwayd still holding an fd does not keep it) every
// bpf filesystem under `root` and removes the mount points.
Status UnmountBpffsUnder(const std::string& root);

}  // namespace terway::lab
