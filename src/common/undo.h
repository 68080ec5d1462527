// UndoStack: rollback by construction. A multi-step operation pushes, after
// each step that changed something, the step that takes it back; if the
// operation does not reach Commit(), the destructor (or Unwind()) runs the
// undo steps newest first.
//
// Later steps depend on earlier ones (a pod's wiring uses its address), so
// when an undo step fails the older ones are skipped: releasing an address
// whose wiring could not be removed would hand a live sandbox's address to
// the next pod. What is skipped stays for the owner's own repair paths (the
// runtime's DEL, garbage collection), and is logged.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/log.h"
#include "common/result.h"

namespace terway {

class UndoStack {
 public:
  explicit UndoStack(std::string what) : what_(std::move(what)) {}
  UndoStack(const UndoStack&) = delete;
  UndoStack& operator=(const UndoStack&) = delete;
  ~UndoStack() { (void)Unwind(); }

  // name: what the step takes back, for the log ("wiring of pod x/y").
  void Push(std::string name, std::function<Status()> step) {
    steps_.push_back({std::move(name), std::move(step)});
  }
  // The operation succeeded: nothing is undone.
  void Commit() { steps_.clear(); }
  size_t size() const { return steps_.size(); }

  // Runs the undo steps newest first and empties the stack. Returns the
  // first failure (the steps older than it were skipped), else Ok.
  Status Unwind() {
    Status result = Ok();
    while (!steps_.empty()) {
      auto [name, step] = std::move(steps_.back());
      steps_.pop_back();
      Status st = step();
      if (st.ok()) continue;
      log::Warn("undo of {}: taking back the {} failed, {} earlier step(s) left for repair: {}", what_, name,
                steps_.size(), st.error().ToString());
      result = std::move(st).error().Wrap("undoing " + name);
      steps_.clear();
    }
    return result;
  }

 private:
  std::string what_;
  std::vector<std::pair<std::string, std::function<Status()>>> steps_;
};

}  // namespace terway

