#include "config/json_values.h"

#include <cmath>

#include "config/go_duration.h"

namespace terway::config {

using nlohmann::json;

Error KeyError(const std::string& key, const std::string& what) {
  return Errorf(ErrorCode::kInvalidArgument, "eni_conf key \"{}\": {}", key, what);
}

Result<int> GetSignedInt(const json& v, const std::string& key, int min_value, int max_value) {
  if (!v.is_number_integer() && !(v.is_number_float() && std::floor(v.get<double>()) == v.get<double>())) {
    return KeyError(key, fmt::format("expected an integer, got {} ({}); write it without quotes, e.g. \"{}\": 5",
                                     v.type_name(), v.dump(), key));
  }
  double d = v.get<double>();
  if (d < min_value || d > max_value) {
    return KeyError(key, fmt::format("{} is out of range (must be from {} to {})", v.dump(), min_value, max_value));
  }
  return static_cast<int>(d);
}

Result<int> GetInt(const json& v, const std::string& key, int min_value) {
  return GetSignedInt(v, key, min_value, 1000000000);
}

Result<bool> GetBool(const json& v, const std::string& key) {
  if (!v.is_boolean()) {
    return KeyError(key, fmt::format("expected true or false, got {} ({}); write it without quotes",
                                     v.type_name(), v.dump()));
  }
  return v.get<bool>();
}

Result<std::string> GetString(const json& v, const std::string& key) {
  if (!v.is_string()) return KeyError(key, fmt::format("expected a string, got {} ({})", v.type_name(), v.dump()));
  return v.get<std::string>();
}

Result<std::vector<std::string>> GetStringList(const json& v, const std::string& key) {
  if (!v.is_array()) return KeyError(key, fmt::format("expected a list of strings, got {}", v.type_name()));
  std::vector<std::string> out;
  for (const auto& e : v) {
    if (!e.is_string()) return KeyError(key, fmt::format("expected a list of strings, found element {}", e.dump()));
    out.push_back(e.get<std::string>());
  }
  return out;
}

Result<std::map<std::string, std::string>> GetStringMap(const json& v, const std::string& key,
                                                        const std::string& what) {
  if (!v.is_object()) {
    return KeyError(key, fmt::format("expected an object of string {} values, got {}", what, v.type_name()));
  }
  std::map<std::string, std::string> out;
  for (const auto& [k, e] : v.items()) {
    if (!e.is_string()) {
      return KeyError(key, fmt::format("{} \"{}\" must have a string value, got {}", what, k, e.dump()));
    }
    out[k] = e.get<std::string>();
  }
  return out;
}

Result<std::chrono::seconds> GetDuration(const json& v, const std::string& key) {
  TERWAY_ASSIGN_OR_RETURN(std::string text, GetString(v, key));
  auto d = ParseGoDuration(text);
  if (!d.ok()) return KeyError(key, d.error().message + " (use Go duration syntax, e.g. \"30m\")");
  return *d;
}

}  // namespace terway::config
