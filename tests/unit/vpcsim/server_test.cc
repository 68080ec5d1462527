// The HTTP listeners on loopback: OpenAPI, metadata (emulator header) and admin.
#include <httplib.h>

#include <filesystem>

#include "tools/vpcsim/server.h"
#include "unit/vpcsim/cloud_fixture.h"

namespace terway::vpcsim::testing {
namespace {

using nlohmann::json;

TEST(VpcsimServer, ServesApiMetadataAndAdminOnLoopbackAndStopsCleanly) {
  char tmpl[] = "/tmp/vpcsim-srv-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  struct Cleanup {
    std::string d;
    ~Cleanup() { std::filesystem::remove_all(d); }
  } cleanup{tmpl};
  auto world = ParseWorld(kTestWorld);
  ASSERT_TRUE(world.ok());
  FakeFabric fabric("srv");
  Vpcsim::Options o;
  o.state_dir = tmpl;
  o.attach_delay = std::chrono::milliseconds(50);
  o.tick = std::chrono::milliseconds(5);
  auto v = Vpcsim::Start(*world, o, &fabric, &RealClock::Instance());
  ASSERT_TRUE(v.ok()) << v.error().ToString();
  ASSERT_GT((*v)->port(), 0);
  httplib::Client c("127.0.0.1", (*v)->port());

  std::string q = SignedQuery("GET", "CreateNetworkInterface", {{"VSwitchId", "vsw-a"}, {"SecurityGroupId", "sg"}},
                              {}, RealClock::Instance().Now());
  auto r = c.Get(("/?" + q).c_str());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  std::string eni = json::parse(r->body)["NetworkInterfaceId"];

  std::string body = SignedQuery("POST", "AttachNetworkInterface", {{"NetworkInterfaceId", eni}, {"InstanceId", "i-big"}},
                                 {}, RealClock::Instance().Now());
  r = c.Post("/", body, "application/x-www-form-urlencoded");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  // The worker completes the attach on real time: poll with a deadline.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::string status;
  while (std::chrono::steady_clock::now() < deadline) {
    auto d = c.Get(("/?" + SignedQuery("GET", "DescribeNetworkInterfaces", {{"NetworkInterfaceId.1", eni}}, {},
                                       RealClock::Instance().Now())).c_str());
    ASSERT_TRUE(d);
    status = json::parse(d->body)["NetworkInterfaceSets"]["NetworkInterfaceSet"][0]["Status"];
    if (status == "InUse") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(status, "InUse");
  EXPECT_EQ(fabric.AttachedEnis().count(eni), 1u);

  httplib::Headers h = {{kEmulatorInstanceHeader, "i-big"}};
  auto md = c.Get("/latest/meta-data/instance-id", h);
  ASSERT_TRUE(md);
  EXPECT_EQ(md->body, "i-big");
  httplib::Headers th = {{kEmulatorInstanceHeader, "i-big"}, {"X-aliyun-ecs-metadata-token-ttl-seconds", "30"}};
  auto tok = c.Put("/latest/api/token", th, "", "text/plain");
  ASSERT_TRUE(tok);
  ASSERT_EQ(tok->status, 200);
  httplib::Headers rh = {{kEmulatorInstanceHeader, "i-big"}, {"X-aliyun-ecs-metadata-token", tok->body}};
  auto md2 = c.Get("/latest/meta-data/vswitch-id", rh);
  ASSERT_TRUE(md2);
  EXPECT_EQ(md2->body, "vsw-a");

  auto stats = c.Get("/admin/stats");
  ASSERT_TRUE(stats);
  EXPECT_GE(json::parse(stats->body)["actions"]["CreateNetworkInterface"]["calls"].get<int>(), 1);
  auto bad = c.Get("/?Action=%zz");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(json::parse(bad->body)["Code"], "InvalidParameter");

  (*v)->Stop();
  (*v)->Stop();  // idempotent
  httplib::Client after("127.0.0.1", (*v)->port());
  after.set_connection_timeout(1);
  EXPECT_FALSE(after.Get("/admin/health"));
}

}  // namespace
}  // namespace terway::vpcsim::testing
