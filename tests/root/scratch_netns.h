// A named network namespace a root test owns: created with a unique name,
// deleted when the object goes out of scope, also when the test fails.
#pragma once

#include <string>

#include "netlink/netns.h"
#include "test_util.h"

namespace terway::testing {

struct ScratchNetns {
  explicit ScratchNetns(const std::string& prefix) : name(prefix + UniqueSuffix()) {
    created = netlink::CreateNamedNetns(name);
  }
  ~ScratchNetns() {
    if (created.ok()) (void)netlink::DeleteNamedNetns(name);
  }
  ScratchNetns(const ScratchNetns&) = delete;
  ScratchNetns& operator=(const ScratchNetns&) = delete;

  std::string name;
  Status created;  // ASSERT_OK(ns.created) before use
};

}  // namespace terway::testing
