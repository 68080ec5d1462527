#include "cni/spec.h"

#include <cctype>

#include "cni/json_text.h"
#include "common/strings.h"

namespace terway::cni {

const std::vector<std::string>& SupportedVersionStrings() {
  static const std::vector<std::string> kVersions = {"0.3.1", "0.4.0", "1.0.0", "1.1.0"};
  return kVersions;
}

std::string_view SpecVersionString(SpecVersion v) {
  switch (v) {
    case SpecVersion::k031: return "0.3.1";
    case SpecVersion::k040: return "0.4.0";
    case SpecVersion::k100: return "1.0.0";
    case SpecVersion::k110: return "1.1.0";
  }
  return "1.1.0";
}

std::optional<SpecVersion> ParseSpecVersion(std::string_view text) {
  if (text == "0.3.1") return SpecVersion::k031;
  if (text == "0.4.0") return SpecVersion::k040;
  if (text == "1.0.0") return SpecVersion::k100;
  if (text == "1.1.0") return SpecVersion::k110;
  return std::nullopt;
}

bool SupportsCheck(SpecVersion v) { return v != SpecVersion::k031; }
bool SupportsGcAndStatus(SpecVersion v) { return v == SpecVersion::k110; }

CniError MakeCniError(int code, std::string msg, std::string details) {
  return CniError{code, std::move(msg), std::move(details)};
}

std::optional<Command> ParseCommand(std::string_view text) {
  if (text == "ADD") return Command::kAdd;
  if (text == "DEL") return Command::kDel;
  if (text == "CHECK") return Command::kCheck;
  if (text == "VERSION") return Command::kVersion;
  if (text == "GC") return Command::kGc;
  if (text == "STATUS") return Command::kStatus;
  return std::nullopt;
}

std::string_view CommandName(Command c) {
  switch (c) {
    case Command::kAdd: return "ADD";
    case Command::kDel: return "DEL";
    case Command::kCheck: return "CHECK";
    case Command::kVersion: return "VERSION";
    case Command::kGc: return "GC";
    case Command::kStatus: return "STATUS";
  }
  return "?";
}

Result<CniArgs> ParseCniArgs(std::string_view text) {
  CniArgs out;
  for (const std::string& pair : Split(text, ';', /*skip_empty=*/true)) {
    auto eq = pair.find('=');
    if (eq == std::string::npos)
      return Errorf(ErrorCode::kInvalidArgument, "CNI_ARGS: pair {:?} has no '='", pair);
    std::string key = pair.substr(0, eq);
    if (key.empty())
      return Errorf(ErrorCode::kInvalidArgument, "CNI_ARGS: pair {:?} has an empty key", pair);
    out.all[key] = pair.substr(eq + 1);
  }
  auto it = out.all.find("IgnoreUnknown");
  if (it != out.all.end()) {
    std::string v = it->second;
    for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.ignore_unknown = (v == "1" || v == "true");
  }
  for (const auto& [k, v] : out.all) {
    if (k == "IgnoreUnknown") continue;
    if (k == "K8S_POD_NAMESPACE") out.pod_namespace = v;
    else if (k == "K8S_POD_NAME") out.pod_name = v;
    else if (k == "K8S_POD_UID") out.pod_uid = v;
    else if (k == "K8S_POD_INFRA_CONTAINER_ID") out.infra_container_id = v;
    else if (!out.ignore_unknown)
      return Errorf(ErrorCode::kInvalidArgument,
                    "CNI_ARGS: unknown key {:?} (set IgnoreUnknown=1 to pass keys terway does not use)", k);
  }
  return out;
}

namespace {

bool IdChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}

Status ValidateIdLike(std::string_view what, std::string_view id) {
  if (id.empty()) return Errorf(ErrorCode::kInvalidArgument, "missing {}", what);
  if (!std::isalnum(static_cast<unsigned char>(id[0])))
    return Errorf(ErrorCode::kInvalidArgument, "invalid {} {:?}: must start with a letter or digit", what, id);
  for (char c : id)
    if (!IdChar(c))
      return Errorf(ErrorCode::kInvalidArgument,
                    "invalid {} {:?}: only letters, digits, '_', '.' and '-' are allowed", what, id);
  return Ok();
}

}  // namespace

Status ValidateContainerId(std::string_view id) { return ValidateIdLike("container ID", id); }
Status ValidateNetworkName(std::string_view name) { return ValidateIdLike("network name", name); }

Status ValidateInterfaceName(std::string_view name) {
  if (name.empty()) return MakeError(ErrorCode::kInvalidArgument, "interface name is empty");
  // The kernel's IFNAMSIZ is 16 including the terminating NUL.
  if (name.size() > 15)
    return Errorf(ErrorCode::kInvalidArgument, "interface name {:?} is longer than 15 characters", name);
  if (name == "." || name == "..")
    return Errorf(ErrorCode::kInvalidArgument, "interface name {:?} is not allowed", name);
  for (char c : name) {
    if (c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c)))
      return Errorf(ErrorCode::kInvalidArgument,
                    "interface name {:?} contains '/', ':' or whitespace", name);
  }
  return Ok();
}

Result<Environment> ParseEnvironment(const std::map<std::string, std::string>& env) {
  auto get = [&](const char* k) -> std::string {
    auto it = env.find(k);
    return it == env.end() ? std::string() : it->second;
  };
  // Every CNI_* value may be echoed inside JSON (the result's sandbox and
  // interface name, the daemon request, error messages): text that JSON
  // cannot carry is refused here, naming the variable, rather than mangled
  // or thrown on later.
  for (const char* key : {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"}) {
    auto it = env.find(key);
    if (it != env.end()) TERWAY_TRY(CheckText(key, it->second));
  }
  std::string cmd_text = get("CNI_COMMAND");
  if (cmd_text.empty())
    return MakeError(ErrorCode::kInvalidArgument, "required env variables [CNI_COMMAND] missing");
  auto cmd = ParseCommand(cmd_text);
  if (!cmd) return Errorf(ErrorCode::kInvalidArgument, "unknown CNI_COMMAND {:?}", cmd_text);

  Environment out;
  out.command = *cmd;
  out.container_id = get("CNI_CONTAINERID");
  out.netns = get("CNI_NETNS");
  out.ifname = get("CNI_IFNAME");
  out.args_raw = get("CNI_ARGS");
  std::string path = get("CNI_PATH");
  out.path = Split(path, ':', /*skip_empty=*/true);

  const bool per_container = *cmd == Command::kAdd || *cmd == Command::kCheck || *cmd == Command::kDel;
  if (per_container) {
    std::vector<std::string> missing;
    if (out.container_id.empty()) missing.push_back("CNI_CONTAINERID");
    if (out.netns.empty() && *cmd != Command::kDel) missing.push_back("CNI_NETNS");
    if (out.ifname.empty()) missing.push_back("CNI_IFNAME");
    if (path.empty()) missing.push_back("CNI_PATH");
    if (!missing.empty())
      return Errorf(ErrorCode::kInvalidArgument, "required env variables [{}] missing for {}",
                    Join(missing, ","), cmd_text);
    TERWAY_TRY_CTX(ValidateContainerId(out.container_id), "CNI_CONTAINERID");
    TERWAY_TRY_CTX(ValidateInterfaceName(out.ifname), "CNI_IFNAME");
  }
  TERWAY_ASSIGN_OR_RETURN(out.args, ParseCniArgs(out.args_raw));
  return out;
}

}  // namespace terway::cni
