// Fuzz target: the plugin's side of the protocol, a reply frame from terwayd
// (DecodeReply).
//
// Invariants: a decoded reply is consistent (ok() exactly when it carries
// no error), encodes to exactly one line, and decodes back to itself.
#include <cstdint>

#include "cni/protocol.h"
#include "fuzz/fuzz_check.h"

using namespace terway;
using namespace terway::cni;
using namespace terway::cni::protocol;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)fuzz::ReportFd();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto reply = DecodeReply(fuzz::AsText(data, size));
  if (!reply.ok()) {
    FUZZ_CHECK(reply.error().code == ErrorCode::kInvalidArgument, reply.error().ToString());
    return 0;
  }
  FUZZ_CHECK(fuzz::AsText(data, size).find('\0') == std::string_view::npos, "accepted a frame with a NUL byte");
  const std::string frame = EncodeReply(*reply);
  FUZZ_CHECK(frame.find('\n') == frame.size() - 1, "a reply frame holds a raw newline");
  fuzz::MustParse(frame, "reply frame");
  auto back = DecodeReply(frame);
  FUZZ_CHECK(back.ok(), back.ok() ? "" : back.error().ToString() + " in " + frame.substr(0, 512));
  FUZZ_CHECK(*back == *reply, frame.substr(0, 512));
  return 0;
}
