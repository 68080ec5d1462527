#include "cloud/credentials.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace terway::cloud {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

// Removes the file on scope exit, also when the test fails.
struct TempFile {
  std::string path = "/tmp/terway-cred-" + terway::testing::UniqueSuffix() + ".json";
  ~TempFile() { std::remove(path.c_str()); }
  void Write(const std::string& content) const { std::ofstream(path) << content; }
};

std::string TokenConfig(const std::string& id, const std::string& secret, const std::string& token,
                        const std::string& expiration) {
  const std::string keyring = "0123456789abcdef";  // AES-128
  const std::string iv = "fedcba9876543210";
  auto enc = [&](const std::string& s) {
    auto r = EncryptedFileCredentialProvider::Encrypt(s, keyring, iv);
    EXPECT_TRUE(r.ok());
    return r.value_or("");
  };
  return nlohmann::json{{"access.key.id", enc(id)},
                        {"access.key.secret", enc(secret)},
                        {"security.token", enc(token)},
                        {"expiration", expiration},
                        {"keyring", keyring}}
      .dump();
}

TEST(CredentialsTest, StaticKey) {
  StaticCredentialProvider p("id", "secret");
  auto c = p.Get();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->access_key_id, "id");
  EXPECT_TRUE(c->security_token.empty());
  EXPECT_FALSE(c->expiration.has_value());
  StaticCredentialProvider empty("id", "");
  EXPECT_FALSE(empty.Get().ok());
}

TEST(CredentialsTest, EncryptedTokenConfigDecrypts) {
  auto c = EncryptedFileCredentialProvider::Parse(
      TokenConfig("STS.id", "the-secret-of-some-length", "tok", "2030-01-02T03:04:05Z"));
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->access_key_id, "STS.id");
  EXPECT_EQ(c->access_key_secret, "the-secret-of-some-length");
  EXPECT_EQ(c->security_token, "tok");
  EXPECT_EQ(FormatIso8601(*c->expiration), "2030-01-02T03:04:05Z");
}

TEST(CredentialsTest, EncryptedTokenConfigErrors) {
  EXPECT_FALSE(EncryptedFileCredentialProvider::Parse("{").ok());
  EXPECT_FALSE(EncryptedFileCredentialProvider::Parse("{}").ok());
  auto j = nlohmann::json::parse(TokenConfig("a", "b", "c", "2030-01-02T03:04:05Z"));
  auto wrong_key = j;
  wrong_key["keyring"] = "another-16-bytes";
  EXPECT_FALSE(EncryptedFileCredentialProvider::Parse(wrong_key.dump()).ok());
  auto bad_len = j;
  bad_len["keyring"] = "short";
  EXPECT_NE(EncryptedFileCredentialProvider::Parse(bad_len.dump()).error().ToString().find("16, 24 or 32"),
            std::string::npos);
  auto bad_time = j;
  bad_time["expiration"] = "tomorrow";
  EXPECT_FALSE(EncryptedFileCredentialProvider::Parse(bad_time.dump()).ok());
}

TEST(CredentialsTest, CredentialPathIsReReadBeforeExpiration) {
  FakeClock clock;  // 2023-11-14T22:13:20Z
  TempFile f;
  auto exp1 = clock.Now() + minutes(30);
  f.Write(TokenConfig("id-1", "s1", "t1", FormatIso8601(exp1)));
  EncryptedFileCredentialProvider p(f.path, &clock, minutes(5));
  ASSERT_EQ(p.Get().value().access_key_id, "id-1");
  f.Write(TokenConfig("id-2", "s2", "t2", FormatIso8601(exp1 + minutes(60))));
  clock.Advance(minutes(20));  // 10 min left > 5 min margin: cached
  EXPECT_EQ(p.Get().value().access_key_id, "id-1");
  clock.Advance(minutes(6));  // 4 min left: refreshed from the file
  EXPECT_EQ(p.Get().value().access_key_id, "id-2");
}

TEST(CredentialsTest, MissingCredentialFileNamesThePath) {
  FakeClock clock;
  EncryptedFileCredentialProvider p("/nonexistent/token-config", &clock);
  auto r = p.Get();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().ToString().find("/nonexistent/token-config"), std::string::npos);
}

class MapMetadata : public InstanceMetadata {
 public:
  std::map<std::string, std::string> values;
  int gets = 0;
  bool down = false;
  std::mutex mu;
  Result<std::string> Get(const std::string& path) override {
    std::lock_guard l(mu);
    gets++;
    if (down) return Error(ErrorCode::kUnavailable, "metadata down");
    auto it = values.find(path);
    if (it == values.end()) return Error(ErrorCode::kNotFound, path);
    return it->second;
  }
};

std::string StsDoc(const std::string& id, Clock::TimePoint exp) {
  return nlohmann::json{{"AccessKeyId", id},        {"AccessKeySecret", "sk-" + id},
                        {"SecurityToken", "st-" + id}, {"Expiration", FormatIso8601(exp)},
                        {"LastUpdated", "2023-01-01T00:00:00Z"}, {"Code", "Success"}}
      .dump();
}

TEST(CredentialsTest, RamRoleDiscoveredAndRefreshedBeforeExpiration) {
  FakeClock clock;
  MapMetadata md;
  md.values["ram/security-credentials/"] = "TerwayRole";
  md.values["ram/security-credentials/TerwayRole"] = StsDoc("STS.1", clock.Now() + minutes(60));
  RamRoleCredentialProvider p(&md, &clock, "", minutes(5));
  auto c = p.Get();
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->access_key_id, "STS.1");
  EXPECT_EQ(c->security_token, "st-STS.1");
  EXPECT_EQ(p.Name(), "ram_role TerwayRole");
  int gets = md.gets;
  EXPECT_TRUE(p.Get().ok());
  EXPECT_EQ(md.gets, gets) << "cached while far from expiry";

  md.values["ram/security-credentials/TerwayRole"] = StsDoc("STS.2", clock.Now() + minutes(120));
  clock.Advance(minutes(56));  // 4 min left, inside the margin
  EXPECT_EQ(p.Get().value().access_key_id, "STS.2");

  // A failed refresh while the old credential still lives: keep using it.
  clock.Advance(minutes(60));  // STS.2 has 4 min left
  md.down = true;
  EXPECT_EQ(p.Get().value().access_key_id, "STS.2");
  // ... but never past its expiration.
  clock.Advance(minutes(5));
  auto expired = p.Get();
  ASSERT_FALSE(expired.ok());
  EXPECT_NE(expired.error().ToString().find("ram_role TerwayRole"), std::string::npos);
}

TEST(CredentialsTest, RamRoleErrors) {
  FakeClock clock;
  MapMetadata md;
  md.values["ram/security-credentials/"] = "";
  RamRoleCredentialProvider none(&md, &clock);
  auto r = none.Get();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().ToString().find("no RAM role"), std::string::npos);

  md.values["ram/security-credentials/R"] = R"({"Code":"Failed"})";
  RamRoleCredentialProvider failed(&md, &clock, "R");
  EXPECT_FALSE(failed.Get().ok());
  md.values["ram/security-credentials/R"] = "garbage";
  RamRoleCredentialProvider garbage(&md, &clock, "R");
  EXPECT_FALSE(garbage.Get().ok());
}

TEST(CredentialsTest, ConcurrentGetsShareOneRefresh) {
  FakeClock clock;
  MapMetadata md;
  md.values["ram/security-credentials/"] = "R";
  md.values["ram/security-credentials/R"] = StsDoc("STS.1", clock.Now() + minutes(60));
  RamRoleCredentialProvider p(&md, &clock, "", minutes(5));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; t++) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; i++) {
        auto c = p.Get();
        if (!c.ok() || c->access_key_id != "STS.1") failures++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(md.gets, 2) << "one role listing and one credential fetch for 1600 Gets";
}

}  // namespace
}  // namespace terway::cloud
