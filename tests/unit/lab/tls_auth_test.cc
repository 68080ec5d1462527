// The REST client's TLS and bearer-token paths (in-cluster configuration,
// kubeconfig CA data) against the stand-in serving HTTPS on 127.0.0.1.
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <gtest/gtest.h>

#include "k8s/client.h"
#include "k8s/config.h"
#include "tools/lab/apiserver/server.h"

namespace terway::lab {
namespace {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "k8s-tls-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) setenv(name_, old_->c_str(), 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::string ReadFile(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TlsAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/usr/bin/openssl", X_OK) != 0) GTEST_SKIP() << "openssl CLI not installed (needed to make a test certificate)";
    cert_ = dir_.path() + "/tls.crt";
    key_ = dir_.path() + "/tls.key";
    // A self-signed certificate for 127.0.0.1, which also serves as the CA.
    MakeCert(cert_, key_);
    other_ca_ = dir_.path() + "/other.crt";
    MakeCert(other_ca_, dir_.path() + "/other.key");
    ApiServerOptions o;
    o.tls_cert_file = cert_;
    o.tls_key_file = key_;
    o.bearer_token = "s3cret";
    server_ = std::make_unique<ApiServer>(NewDefaultStore(), o);
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }
  static void MakeCert(const std::string& cert, const std::string& key) {
    std::string cmd = "/usr/bin/openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
                      "-subj /CN=lab-apiserver -addext subjectAltName=IP:127.0.0.1 -keyout " + key + " -out " +
                      cert + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  Result<k8s::Json> Version(const k8s::RestConfig& cfg) {
    return k8s::RestClient::FromConfig(cfg)->GetPath("/version");
  }

  TempDir dir_;
  std::string cert_, key_, other_ca_;
  std::unique_ptr<ApiServer> server_;
};

TEST_F(TlsAuthTest, InClusterConfigTalksHttpsWithTheServiceAccountToken) {
  std::string token_file = dir_.path() + "/token";
  std::ofstream(token_file) << "s3cret\n";
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "127.0.0.1");
  ScopedEnv port("KUBERNETES_SERVICE_PORT", std::to_string(server_->port()));
  auto cfg = k8s::LoadInClusterConfig({token_file, cert_});
  ASSERT_TRUE(cfg.ok()) << cfg.error().ToString();
  auto v = Version(*cfg);
  ASSERT_TRUE(v.ok()) << v.error().ToString();
  EXPECT_EQ((*v)["major"], "1");

  // The token is re-read from its file: a rotated (here: wrong) token is used at once.
  std::ofstream(token_file) << "rotated\n";
  auto denied = Version(*cfg);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().http_status, 401);
  EXPECT_EQ(denied.error().code, ErrorCode::kPermission);
}

TEST_F(TlsAuthTest, CaDataFromKubeconfigAndVerificationFailures) {
  k8s::RestConfig cfg;
  cfg.server = server_->url();
  cfg.token = "s3cret";
  cfg.ca_data = ReadFile(cert_);
  ASSERT_TRUE(Version(cfg).ok());

  // A CA that did not sign the server's certificate: the handshake must
  // fail, not fall back.
  k8s::RestConfig untrusted = cfg;
  untrusted.ca_data.clear();
  untrusted.ca_file = other_ca_;
  auto bad = Version(untrusted);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(bad.error().ToString().find("certificate"), std::string::npos) << bad.error().ToString();

  // insecure-skip-tls-verify accepts it.
  untrusted.insecure_skip_tls_verify = true;
  EXPECT_TRUE(Version(untrusted).ok());

  // No token: 401 with a Kubernetes Status.
  k8s::RestConfig anonymous = cfg;
  anonymous.token.clear();
  auto denied = Version(anonymous);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().http_status, 401);
}

}  // namespace
}  // namespace terway::lab
