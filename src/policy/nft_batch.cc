#include "policy/nft_batch.h"

#include <nftables/libnftables.h>

#include <memory>
#include <mutex>

#include "common/strings.h"
#include "netlink/netns.h"

namespace terway::policy {

namespace {

struct CtxDeleter {
  void operator()(nft_ctx* c) const { nft_ctx_free(c); }
};

// libnftables keeps process-wide state it does not document as thread-safe.
std::mutex g_nft_mu;

}  // namespace

Status RunNftBatch(const std::string& netns, const std::string& script, std::string* json_out) {
  auto run = [&]() -> Status {
    std::lock_guard lock(g_nft_mu);
    std::unique_ptr<nft_ctx, CtxDeleter> ctx(nft_ctx_new(NFT_CTX_DEFAULT));
    if (!ctx) return Errorf(ErrorCode::kInternal, "nft_ctx_new failed");
    nft_ctx_buffer_output(ctx.get());
    nft_ctx_buffer_error(ctx.get());
    if (json_out) nft_ctx_output_set_flags(ctx.get(), NFT_CTX_OUTPUT_JSON);
    if (nft_run_cmd_from_buffer(ctx.get(), script.c_str()) != 0) {
      const char* err = nft_ctx_get_error_buffer(ctx.get());
      std::string msg(Trim(err ? err : ""));
      Error e(ErrorCode::kKernel, "nft: " + (msg.empty() ? std::string("command failed") : msg));
      if (msg.find("No such file or directory") != std::string::npos) e.code = ErrorCode::kNotFound;
      return e;
    }
    if (json_out) {
      const char* o = nft_ctx_get_output_buffer(ctx.get());
      *json_out = o ? o : "";
    }
    return Ok();
  };
  if (netns.empty()) return run();
  // nftables state is per namespace and libnftables talks netlink from the
  // calling thread's namespace: run on a thread inside it.
  Status s = netlink::RunInNetns(netns, run);
  if (!s.ok()) return std::move(s).error().Wrap("in network namespace " + netns);
  return Ok();
}

}  // namespace terway::policy
