// CheckConntrackKfuncs (src/ebpf/detect.h) over BTF built in memory: the
// kernel's BTF of a kernel with and without the conntrack kfuncs.
#include "ebpf/detect.h"

#include <bpf/btf.h>

#include <gtest/gtest.h>

namespace terway::ebpf {
namespace {

// A BTF holding `void name(void)` for each name.
struct FakeBtf {
  explicit FakeBtf(std::initializer_list<const char*> funcs) : b(btf__new_empty()) {
    int proto = btf__add_func_proto(b, 0);
    for (const char* f : funcs) btf__add_func(b, f, BTF_FUNC_STATIC, proto);
  }
  ~FakeBtf() { btf__free(b); }
  btf* b;
};

TEST(EbpfDetect, TheConntrackKfuncsMayComeFromVmlinuxOrTheNfConntrackModule) {
  FakeBtf with({"bpf_skb_ct_lookup", "bpf_ct_release", "tcp_sendmsg"});
  FakeBtf without({"tcp_sendmsg"});
  ASSERT_NE(with.b, nullptr);
  EXPECT_TRUE(CheckConntrackKfuncs(with.b, nullptr).ok());
  EXPECT_TRUE(CheckConntrackKfuncs(without.b, with.b).ok()) << "nf_conntrack built as a module";
}

TEST(EbpfDetect, AKernelWithoutTheConntrackKfuncsIsUnsupportedAndToldWhy) {
  FakeBtf without({"tcp_sendmsg"});
  FakeBtf half({"bpf_skb_ct_lookup"});
  for (const btf* mod : {static_cast<const btf*>(nullptr), static_cast<const btf*>(without.b)}) {
    Status s = CheckConntrackKfuncs(without.b, mod);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, ErrorCode::kUnsupported);
    EXPECT_NE(s.error().message.find("bpf_skb_ct_lookup"), std::string::npos) << s.error().ToString();
    EXPECT_NE(s.error().message.find("Linux 6.0"), std::string::npos);
  }
  EXPECT_FALSE(CheckConntrackKfuncs(half.b, nullptr).ok()) << "lookup without release cannot be used";
}

}  // namespace
}  // namespace terway::ebpf
