// Typed reads of one eni_conf value, each failing with an error that names
// the key, what was expected and what was found. Go's encoding/json is the
// model: integers written as 5.0 are integers, strings are never numbers.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace terway::config {

Error KeyError(const std::string& key, const std::string& what);

Result<int> GetInt(const nlohmann::json& v, const std::string& key, int min_value);
Result<int> GetSignedInt(const nlohmann::json& v, const std::string& key, int min_value, int max_value);
Result<bool> GetBool(const nlohmann::json& v, const std::string& key);
Result<std::string> GetString(const nlohmann::json& v, const std::string& key);
Result<std::vector<std::string>> GetStringList(const nlohmann::json& v, const std::string& key);
// An object of string values; `what` names one entry in errors ("tag").
Result<std::map<std::string, std::string>> GetStringMap(const nlohmann::json& v, const std::string& key,
                                                        const std::string& what);
// A Go duration string ("30m").
Result<std::chrono::seconds> GetDuration(const nlohmann::json& v, const std::string& key);

}  // namespace terway::config
