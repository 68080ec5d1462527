#include "tools/vpcsim/fabric/nft.h"

#include <nftables/libnftables.h>

#include <memory>
#include <mutex>

#include "common/strings.h"
#include "netlink/netns.h"

namespace terway::vpcsim {

namespace {

struct CtxDeleter {
  void operator()(nft_ctx* c) const { nft_ctx_free(c); }
};

// libnftables 1.0 keeps some process-wide state (GMP allocator hooks, cached
// iproute2 tables) that it does not document as thread-safe: one run at a time
// across all worlds of the process.
std::mutex g_nft_mu;

Status Run(const std::string& netns, const std::string& commands, bool json, std::string* out) {
  std::lock_guard lock(g_nft_mu);
  Status s = netlink::RunInNetns(netns, [&]() -> Status {
    std::unique_ptr<nft_ctx, CtxDeleter> ctx(nft_ctx_new(NFT_CTX_DEFAULT));
    if (!ctx) return Errorf(ErrorCode::kInternal, "nft_ctx_new failed");
    nft_ctx_buffer_output(ctx.get());
    nft_ctx_buffer_error(ctx.get());
    if (json) nft_ctx_output_set_flags(ctx.get(), NFT_CTX_OUTPUT_JSON);
    int rc = nft_run_cmd_from_buffer(ctx.get(), commands.c_str());
    if (rc != 0) {
      const char* err = nft_ctx_get_error_buffer(ctx.get());
      std::string msg(Trim(err ? err : ""));
      Error e(ErrorCode::kKernel, "nft: " + (msg.empty() ? std::string("command failed") : msg));
      // libnftables reports errno only as text; the callers that tolerate a
      // missing object look for it.
      if (msg.find("No such file or directory") != std::string::npos) e.code = ErrorCode::kNotFound;
      return e;
    }
    if (out) {
      const char* o = nft_ctx_get_output_buffer(ctx.get());
      *out = o ? o : "";
    }
    return Ok();
  });
  if (!s.ok()) return std::move(s).error().Wrap("running nft in namespace " + netns);
  return Ok();
}

}  // namespace

Status RunNft(const std::string& netns, const std::string& commands) {
  return Run(netns, commands, false, nullptr);
}

Result<std::string> RunNftJson(const std::string& netns, const std::string& command) {
  std::string out;
  TERWAY_TRY(Run(netns, command, true, &out));
  return out;
}

}  // namespace terway::vpcsim
