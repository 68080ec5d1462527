#include "k8s/config.h"

#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>

#include <yaml-cpp/yaml.h>

namespace terway::k8s {
namespace {

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return SysError("reading " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Dir(const std::string& path) {
  auto pos = path.rfind('/');
  return pos == std::string::npos ? "." : path.substr(0, pos);
}

std::string Resolve(const std::string& base_dir, const std::string& p) {
  if (p.empty() || p[0] == '/') return p;
  return base_dir + "/" + p;
}

// Finds the entry named `name` in a kubeconfig list (clusters, users,
// contexts), each {name: ..., <field>: {...}}.
std::optional<YAML::Node> FindNamed(const YAML::Node& list, const std::string& name, const char* field) {
  if (!list || !list.IsSequence()) return std::nullopt;
  for (const auto& e : list) {
    if (e["name"] && e["name"].as<std::string>() == name) {
      YAML::Node f = e[field];
      // A present but empty entry ("user: {}") is valid and means "no settings".
      return f ? f : YAML::Node(YAML::NodeType::Map);
    }
  }
  return std::nullopt;
}

std::string Str(const YAML::Node& n, const char* key) {
  if (!n || !n[key]) return "";
  return n[key].as<std::string>();
}

}  // namespace

Result<std::string> Base64Decode(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  int bits = 0;
  uint32_t acc = 0;
  for (char c : in) {
    if (c == '=' || c == '\n' || c == '\r' || c == ' ') continue;
    int v = val(c);
    if (v < 0) return MakeError(ErrorCode::kInvalidArgument, "invalid base64 character");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

Result<RestConfig> LoadInClusterConfig(const InClusterPaths& paths) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !*host || !port || !*port) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "not running in a cluster: KUBERNETES_SERVICE_HOST/PORT unset; "
                     "pass a kubeconfig instead");
  }
  RestConfig cfg;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6 service address
  cfg.server = "https://" + h + ":" + port;
  TERWAY_ASSIGN_OR_RETURN_CTX(cfg.token, ReadFile(paths.token_file), "in-cluster config");
  cfg.token_file = paths.token_file;
  TERWAY_ASSIGN_OR_RETURN_CTX(auto ca, ReadFile(paths.ca_file), "in-cluster config");
  (void)ca;
  cfg.ca_file = paths.ca_file;
  return cfg;
}

Result<RestConfig> LoadKubeconfig(const std::string& path, const std::string& context) {
  const std::string ctx = "loading kubeconfig " + path;
  try {
    YAML::Node root = YAML::LoadFile(path);
    std::string ctx_name = context.empty() ? Str(root, "current-context") : context;
    if (ctx_name.empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "no current-context and none given").Wrap(ctx);
    }
    auto found_ctx = FindNamed(root["contexts"], ctx_name, "context");
    if (!found_ctx) return Errorf(ErrorCode::kNotFound, "context '{}' not found", ctx_name).Wrap(ctx);
    const YAML::Node c = *found_ctx;
    std::string cluster_name = Str(c, "cluster");
    std::string user_name = Str(c, "user");
    auto found_cluster = FindNamed(root["clusters"], cluster_name, "cluster");
    if (!found_cluster) return Errorf(ErrorCode::kNotFound, "cluster '{}' not found", cluster_name).Wrap(ctx);
    const YAML::Node cluster = *found_cluster;
    const std::string base = Dir(path);
    RestConfig cfg;
    cfg.server = Str(cluster, "server");
    if (cfg.server.empty()) {
      return Errorf(ErrorCode::kInvalidArgument, "cluster '{}' has no server", cluster_name).Wrap(ctx);
    }
    cfg.ca_file = Resolve(base, Str(cluster, "certificate-authority"));
    if (auto d = Str(cluster, "certificate-authority-data"); !d.empty()) {
      TERWAY_ASSIGN_OR_RETURN_CTX(cfg.ca_data, Base64Decode(d), ctx + ": certificate-authority-data");
    }
    if (cluster["insecure-skip-tls-verify"]) {
      cfg.insecure_skip_tls_verify = cluster["insecure-skip-tls-verify"].as<bool>();
    }
    if (!user_name.empty()) {
      auto found_user = FindNamed(root["users"], user_name, "user");
      if (!found_user) return Errorf(ErrorCode::kNotFound, "user '{}' not found", user_name).Wrap(ctx);
      const YAML::Node user = *found_user;
      cfg.token = Str(user, "token");
      cfg.token_file = Resolve(base, Str(user, "tokenFile"));
      cfg.client_cert_file = Resolve(base, Str(user, "client-certificate"));
      cfg.client_key_file = Resolve(base, Str(user, "client-key"));
      if (auto d = Str(user, "client-certificate-data"); !d.empty()) {
        TERWAY_ASSIGN_OR_RETURN_CTX(cfg.client_cert_data, Base64Decode(d), ctx + ": client-certificate-data");
      }
      if (auto d = Str(user, "client-key-data"); !d.empty()) {
        TERWAY_ASSIGN_OR_RETURN_CTX(cfg.client_key_data, Base64Decode(d), ctx + ": client-key-data");
      }
    }
    return cfg;
  } catch (const YAML::Exception& e) {
    return Errorf(ErrorCode::kInvalidArgument, "{}", e.what()).Wrap(ctx);
  }
}

}  // namespace terway::k8s
