#include "cni/protocol.h"

#include <gtest/gtest.h>

namespace terway::cni::protocol {
namespace {

Request FullRequest() {
  Request r;
  r.op = Op::kAllocate;
  r.deadline_ms = 9000;
  r.cni_version = "1.0.0";
  r.container_id = "c0ffee";
  r.netns = "/var/run/netns/p1";
  r.ifname = "eth0";
  r.pod = PodRef{"default", "web-0", "uid-1", "c0ffee"};
  r.cni_args = {{"IgnoreUnknown", "1"}, {"K8S_POD_NAME", "web-0"}};
  r.bandwidth = Bandwidth{1, 2, 3, 4};
  r.network = NetworkOptions{"terway", "veth", 1500, "172.21.0.0/20", {"169.254.20.10/32"}};
  CniResult prev;
  prev.ips.push_back(IpConfig{"198.18.0.1/32", "", std::nullopt});
  r.prev_result = prev;
  return r;
}

TEST(Protocol, RequestRoundTripEveryOp) {
  for (Op op : {Op::kAllocate, Op::kRelease, Op::kGet, Op::kStatus, Op::kGc}) {
    Request r = FullRequest();
    r.op = op;
    if (op == Op::kGc) r.valid_attachments = {{"a", "eth0"}, {"b", ""}};
    std::string frame = EncodeRequest(r);
    ASSERT_EQ(frame.back(), '\n');
    EXPECT_EQ(frame.find('\n'), frame.size() - 1) << "exactly one newline per frame";
    auto back = DecodeRequest(frame);
    ASSERT_TRUE(back.ok()) << back.error().ToString();
    EXPECT_EQ(*back, r) << OpName(op);
  }
}

TEST(Protocol, InspectRequestsRoundTripAndNeedAView) {
  Request r;
  r.op = Op::kInspect;
  r.inspect_query = InspectQuery{"show", "pod", "default/web"};
  EXPECT_EQ(OpName(r.op), "inspect");
  auto back = DecodeRequest(EncodeRequest(r));
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(*back, r);
  auto bare = DecodeRequest(R"({"v":1,"op":"inspect"})");
  ASSERT_FALSE(bare.ok());
  EXPECT_NE(bare.error().message.find("inspect_query.view"), std::string::npos) << bare.error().message;
}

TEST(Protocol, PolicyRequestsAndAnswersRoundTrip) {
  Request r;
  r.op = Op::kPolicyExplain;
  r.policy_query = PolicyQuery{"x/a", "198.18.0.9", "UDP", 53};
  auto back = DecodeRequest(EncodeRequest(r));
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(*back, r);
  Request show;
  show.op = Op::kPolicyShow;
  EXPECT_EQ(OpName(show.op), "policy_show");
  auto sb = DecodeRequest(EncodeRequest(show));
  ASSERT_TRUE(sb.ok());
  EXPECT_EQ(*sb, show);
  Reply answer;
  answer.allowed = false;
  answer.text = "DENY x/a -> 198.18.0.9 53/UDP\n";
  auto rb = DecodeReply(EncodeReply(answer));
  ASSERT_TRUE(rb.ok()) << rb.error().ToString();
  EXPECT_EQ(*rb, answer);
}

TEST(Protocol, MinimalRequestRoundTrip) {
  Request r;
  r.op = Op::kStatus;
  auto back = DecodeRequest(EncodeRequest(r));
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(*back, r);
}

TEST(Protocol, NewlinesInsideValuesStayEscaped) {
  Request r = FullRequest();
  r.cni_args["NOTE"] = "line1\nline2";
  std::string frame = EncodeRequest(r);
  EXPECT_EQ(frame.find('\n'), frame.size() - 1);
  auto back = DecodeRequest(frame);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->cni_args.at("NOTE"), "line1\nline2");
}

TEST(Protocol, ReplyRoundTrips) {
  Reply ok;
  CniResult res;
  res.interfaces.push_back(Interface{"eth0", "02:00:00:00:00:02", "/ns", 1500});
  res.ips.push_back(IpConfig{"198.18.0.10/32", "169.254.1.1", 0});
  res.routes.push_back(Route{"0.0.0.0/0", "169.254.1.1", {}, {}, {}, {}, {}});
  ok.result = res;
  ok.eni = EniInfo{"eni-1", "00:16:3e:00:00:01", "vsw-1", "198.18.0.253"};
  Reply status;
  status.status = DaemonStatus{false, false, "cloud API unreachable"};
  for (const Reply& r : {ok, status, Reply::Fail(ErrorClass::kExhausted, "vSwitch vsw-1 has no free IP")}) {
    auto back = DecodeReply(EncodeReply(r));
    ASSERT_TRUE(back.ok()) << back.error().ToString();
    EXPECT_EQ(*back, r);
  }
}

TEST(Protocol, EveryErrorClassRoundTrips) {
  for (ErrorClass c : {ErrorClass::kRetryable, ErrorClass::kNotFound, ErrorClass::kInvalid, ErrorClass::kExhausted,
                       ErrorClass::kUnavailable, ErrorClass::kTimeout, ErrorClass::kUnsupported,
                       ErrorClass::kInternal}) {
    auto back = DecodeReply(EncodeReply(Reply::Fail(c, "m")));
    ASSERT_TRUE(back.ok());
    ASSERT_TRUE(back->error.has_value());
    EXPECT_EQ(back->error->cls, c) << ErrorClassName(c);
  }
}

TEST(Protocol, MalformedRequestsTable) {
  const char* cases[] = {
      "",
      "not json",
      "[1,2]",
      R"({"op":"status"})",                                // no version
      R"({"v":2,"op":"status"})",                          // future version
      R"({"v":"1","op":"status"})",
      R"({"v":1})",                                        // no op
      R"({"v":1,"op":"explode"})",
      R"({"v":1,"op":"allocate"})",                        // per-container op without container_id
      R"({"v":1,"op":"release","container_id":5})",
      R"({"v":1,"op":"status","deadline_ms":-5})",
      R"({"v":1,"op":"status","deadline_ms":5000000000})",
      R"({"v":1,"op":"status","bandwidth":{"ingress_rate":-1}})",
      R"({"v":1,"op":"status","pod":{"name":1}})",
      R"({"v":1,"op":"status","cni_args":{"a":1}})",
      R"({"v":1,"op":"gc","valid_attachments":[{"ifname":"eth0"}]})",
      R"({"v":1,"op":"gc","valid_attachments":{}})",
      R"({"v":1,"op":"get","container_id":"c","prev_result":{"ips":[{}]}})",
      R"({"v":1,"op":"policy_explain"})",                                      // no query
      R"({"v":1,"op":"policy_explain","policy_query":{"from":"x/a"}})",         // no destination
      R"({"v":1,"op":"policy_explain","policy_query":{"from":"x/a","to":"y/b","port":70000}})",
      R"({"v":1,"op":"policy_explain","policy_query":"x/a"})",
  };
  for (const char* c : cases) {
    auto r = DecodeRequest(c);
    EXPECT_FALSE(r.ok()) << c;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << c;
    }
  }
}

TEST(Protocol, MalformedRepliesTable) {
  const char* cases[] = {
      "",
      "{",
      R"({"v":1})",                                         // no ok
      R"({"v":1,"ok":"yes"})",
      R"({"v":1,"ok":true,"error":{"class":"internal","message":"x"}})",
      R"({"v":1,"ok":true,"result":{"ips":"x"}})",
      R"({"v":1,"ok":true,"status":{"existing_ok":true}})",  // status without ready
      R"({"v":3,"ok":true})",
  };
  for (const char* c : cases) EXPECT_FALSE(DecodeReply(c).ok()) << c;
  // A failure without a reason still decodes as a failure.
  auto r = DecodeReply(R"({"v":1,"ok":false})");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->ok());
  // An unknown class from a newer daemon degrades to internal.
  auto u = DecodeReply(R"({"v":1,"ok":false,"error":{"class":"brand_new","message":"m"}})");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->error->cls, ErrorClass::kInternal);
  EXPECT_EQ(u->error->message, "m");
}

// Numbers in frames are compared as read, never through int: a version of
// 2^32+1 used to pass as 1, an MTU of 2^32+1500 as 1500. A NUL byte used to
// end the frame early (the JSON parser stops there).
TEST(Protocol, FramesAreReadExactly) {
  const std::string cases[] = {
      R"({"v":4294967297,"op":"status"})",
      R"({"v":-4294967295,"op":"status"})",
      R"({"v":1,"op":"status","network":{"name":"n","mtu":4294968796}})",
      R"({"v":1,"op":"status","network":{"name":"n","mtu":-1}})",
      std::string(R"({"v":1,"op":"status"})") + '\0' + "garbage",
  };
  for (const auto& c : cases) {
    auto r = DecodeRequest(c);
    EXPECT_FALSE(r.ok()) << testing::PrintToString(c);
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << c;
    }
  }
  EXPECT_FALSE(DecodeReply(R"({"v":4294967297,"ok":true})").ok());
  EXPECT_FALSE(DecodeReply(std::string(R"({"v":1,"ok":true})") + '\0').ok());
  auto wrapped_index = DecodeReply(
      R"({"v":1,"ok":true,"result":{"interfaces":[{"name":"eth0"}],"ips":[{"address":"198.18.0.9/32","interface":4294967296}]}})");
  ASSERT_FALSE(wrapped_index.ok());
  EXPECT_NE(wrapped_index.error().ToString().find("interface index 4294967296 is out of range"), std::string::npos)
      << wrapped_index.error().ToString();
  auto mtu = DecodeRequest(R"({"v":1,"op":"status","network":{"name":"n","mtu":9000}})");
  ASSERT_TRUE(mtu.ok()) << mtu.error().ToString();
  EXPECT_EQ(mtu->network.mtu, 9000);
}

TEST(Protocol, SocketPathLimits) {
  EXPECT_TRUE(CheckSocketPath("/var/run/eni/eni.socket").ok());
  EXPECT_TRUE(CheckSocketPath(std::string(kMaxSocketPathBytes, 'a')).ok());
  auto too_long = CheckSocketPath("/" + std::string(kMaxSocketPathBytes, 'a'));
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.error().ToString().find("is 108 bytes long; a unix socket path holds at most 107"),
            std::string::npos)
      << too_long.error().ToString();
  EXPECT_FALSE(CheckSocketPath("").ok());
  EXPECT_FALSE(CheckSocketPath(std::string("\0abstract", 9)).ok());
}

TEST(Protocol, OversizedFrameRejected) {
  std::string big = R"({"v":1,"op":"status","cni_version":")" + std::string(kMaxFrameBytes, 'a') + "\"}";
  EXPECT_FALSE(DecodeRequest(big).ok());
}

TEST(FrameReader, SplitsFramesAcrossArbitraryChunks) {
  std::string stream = EncodeRequest(FullRequest()) + EncodeRequest(Request{});
  FrameReader reader;
  std::vector<std::string> frames;
  for (size_t i = 0; i < stream.size(); i += 7) {
    ASSERT_TRUE(reader.Feed(std::string_view(stream).substr(i, 7)).ok());
    while (auto f = reader.Next()) frames.push_back(*f);
  }
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(*DecodeRequest(frames[0]), FullRequest());
  EXPECT_EQ(reader.buffered(), 0u);
}

TEST(FrameReader, CapsUnterminatedFrames) {
  FrameReader reader(16);
  EXPECT_TRUE(reader.Feed("0123456789").ok());
  EXPECT_FALSE(reader.Next().has_value());
  EXPECT_FALSE(reader.Feed("0123456789").ok());
  FrameReader ok(16);
  EXPECT_TRUE(ok.Feed("0123456789\n0123456789").ok());  // only the tail counts
}

TEST(ReplyErrorFromError, MapsCodes) {
  EXPECT_EQ(ReplyErrorFromError(MakeError(ErrorCode::kExhausted, "x")).cls, ErrorClass::kExhausted);
  EXPECT_EQ(ReplyErrorFromError(MakeError(ErrorCode::kConflict, "x")).cls, ErrorClass::kRetryable);
  EXPECT_EQ(ReplyErrorFromError(MakeError(ErrorCode::kNotFound, "x")).cls, ErrorClass::kNotFound);
  Error cloud(ErrorCode::kCloud, "Throttling");
  cloud.retryable = true;
  EXPECT_EQ(ReplyErrorFromError(cloud).cls, ErrorClass::kRetryable);
  Error wrapped = MakeError(ErrorCode::kInternal, "boom");
  wrapped.Wrap("allocating for pod p");
  auto e = ReplyErrorFromError(wrapped);
  EXPECT_EQ(e.cls, ErrorClass::kInternal);
  EXPECT_NE(e.message.find("allocating for pod p"), std::string::npos);
}

}  // namespace
}  // namespace terway::cni::protocol
