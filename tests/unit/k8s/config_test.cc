#include "k8s/config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace terway::k8s {
namespace {

// A scratch directory removed with everything in it, also when a test fails.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "k8s-config-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& content) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p) << content;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Sets an environment variable for a scope and restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) setenv(name, value, 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) setenv(name_, old_->c_str(), 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(Base64Decode, DecodesStandardAndPadding) {
  EXPECT_EQ(*Base64Decode("aGVsbG8="), "hello");
  EXPECT_EQ(*Base64Decode("aGVsbG8gd29ybGQ="), "hello world");
  EXPECT_EQ(*Base64Decode("YQ=="), "a");
  EXPECT_FALSE(Base64Decode("a*b").ok());
}

TEST(LoadKubeconfig, PicksTheCurrentContextAndResolvesPaths) {
  TempDir dir;
  std::string path = dir.Write("config", R"(apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: lab
  cluster: {server: "http://127.0.0.1:1234", insecure-skip-tls-verify: true}
- name: prod
  cluster:
    server: https://10.0.0.1:6443
    certificate-authority-data: aGVsbG8=
contexts:
- name: lab
  context: {cluster: lab, user: lab}
- name: prod
  context: {cluster: prod, user: admin}
users:
- name: lab
  user: {token: abc}
- name: admin
  user:
    client-certificate: certs/admin.crt
    client-key-data: a2V5
)");
  auto cfg = LoadKubeconfig(path);
  ASSERT_TRUE(cfg.ok()) << cfg.error().ToString();
  EXPECT_EQ(cfg->server, "https://10.0.0.1:6443");
  EXPECT_EQ(cfg->ca_data, "hello");
  EXPECT_EQ(cfg->client_cert_file, dir.path() + "/certs/admin.crt");
  EXPECT_EQ(cfg->client_key_data, "key");
  EXPECT_FALSE(cfg->insecure_skip_tls_verify);

  auto lab = LoadKubeconfig(path, "lab");
  ASSERT_TRUE(lab.ok()) << lab.error().ToString();
  EXPECT_EQ(lab->server, "http://127.0.0.1:1234");
  EXPECT_EQ(lab->token, "abc");
  EXPECT_TRUE(lab->insecure_skip_tls_verify);

  auto missing = LoadKubeconfig(path, "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST(LoadKubeconfig, ReportsBrokenFiles) {
  TempDir dir;
  EXPECT_FALSE(LoadKubeconfig(dir.path() + "/absent").ok());
  EXPECT_FALSE(LoadKubeconfig(dir.Write("bad", "clusters: [unclosed")).ok());
  EXPECT_FALSE(LoadKubeconfig(dir.Write("nocontext", "clusters: []\n")).ok());
  auto noserver = LoadKubeconfig(dir.Write("noserver", R"(current-context: c
contexts: [{name: c, context: {cluster: x}}]
clusters: [{name: x, cluster: {}}]
)"));
  ASSERT_FALSE(noserver.ok());
  EXPECT_NE(noserver.error().ToString().find("no server"), std::string::npos);
}

TEST(LoadInClusterConfig, ReadsServiceAccountFiles) {
  TempDir dir;
  InClusterPaths paths{dir.Write("token", "tok-1\n"), dir.Write("ca.crt", "PEM")};
  {
    ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.96.0.1");
    ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
    auto cfg = LoadInClusterConfig(paths);
    ASSERT_TRUE(cfg.ok()) << cfg.error().ToString();
    EXPECT_EQ(cfg->server, "https://10.96.0.1:443");
    EXPECT_EQ(cfg->token_file, paths.token_file);
    EXPECT_EQ(cfg->ca_file, paths.ca_file);
  }
  {
    ScopedEnv host("KUBERNETES_SERVICE_HOST", "fd00::1");
    ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
    auto cfg = LoadInClusterConfig(paths);
    ASSERT_TRUE(cfg.ok());
    EXPECT_EQ(cfg->server, "https://[fd00::1]:443");
  }
  {
    ScopedEnv host("KUBERNETES_SERVICE_HOST", nullptr);
    EXPECT_FALSE(LoadInClusterConfig(paths).ok());
  }
  {
    ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.96.0.1");
    ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
    EXPECT_FALSE(LoadInClusterConfig({dir.path() + "/absent", paths.ca_file}).ok());
  }
}

}  // namespace
}  // namespace terway::k8s
