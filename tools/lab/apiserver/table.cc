#include "tools/lab/apiserver/table.h"

#include <map>

#include "common/strings.h"
#include "tools/lab/apiserver/printers.h"

namespace terway::lab {
namespace {

Json RowObjectOf(const Json& obj, RowObject mode, const std::string& table_version) {
  if (mode == RowObject::kObject) return obj;
  return {{"kind", "PartialObjectMetadata"},
          {"apiVersion", "meta.k8s.io/" + table_version},
          {"metadata", obj.contains("metadata") ? obj["metadata"] : Json::object()}};
}

}  // namespace

Result<RowObject> ParseIncludeObject(const std::string& text) {
  if (text.empty() || text == "Metadata") return RowObject::kMetadata;
  if (text == "None") return RowObject::kNone;
  if (text == "Object") return RowObject::kObject;
  return Errorf(ErrorCode::kInvalidArgument, "includeObject must be None, Metadata or Object, not {:?}", text);
}

Json TableOf(const ResourceType& t, const std::vector<Json>& objects, Clock::TimePoint now, RowObject row_object,
             const std::string& table_version, const std::string& resource_version) {
  const Printer& p = PrinterFor(t);
  Json columns = Json::array();
  for (const auto& c : p.columns) {
    columns.push_back({{"name", c.name},
                       {"type", c.type},
                       {"format", c.format},
                       {"description", c.description},
                       {"priority", c.priority}});
  }
  Json rows = Json::array();
  for (const auto& obj : objects) {
    Json row = {{"cells", p.cells(obj, now)}};
    if (p.conditions) {
      if (Json conditions = p.conditions(obj); !conditions.is_null()) row["conditions"] = conditions;
    }
    if (row_object != RowObject::kNone) row["object"] = RowObjectOf(obj, row_object, table_version);
    rows.push_back(std::move(row));
  }
  Json meta = Json::object();
  if (!resource_version.empty()) meta["resourceVersion"] = resource_version;
  return {{"kind", "Table"},
          {"apiVersion", "meta.k8s.io/" + table_version},
          {"metadata", meta},
          {"columnDefinitions", columns},
          {"rows", rows}};
}

std::string HumanDuration(std::chrono::seconds d) {
  const int64_t seconds = d.count();
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 60 * 2) return fmt::format("{}s", seconds);
  const int64_t minutes = seconds / 60;
  if (minutes < 10) {
    return seconds % 60 == 0 ? fmt::format("{}m", minutes) : fmt::format("{}m{}s", minutes, seconds % 60);
  }
  if (minutes < 60 * 3) return fmt::format("{}m", minutes);
  const int64_t hours = minutes / 60;
  if (hours < 8) return minutes % 60 == 0 ? fmt::format("{}h", hours) : fmt::format("{}h{}m", hours, minutes % 60);
  if (hours < 48) return fmt::format("{}h", hours);
  if (hours < 24 * 8) {
    return hours % 24 == 0 ? fmt::format("{}d", hours / 24) : fmt::format("{}d{}h", hours / 24, hours % 24);
  }
  if (hours < 24 * 365 * 2) return fmt::format("{}d", hours / 24);
  if (hours < 24 * 365 * 8) {
    const int64_t days = (hours / 24) % 365;
    return days == 0 ? fmt::format("{}y", hours / 24 / 365) : fmt::format("{}y{}d", hours / 24 / 365, days);
  }
  return fmt::format("{}y", hours / 24 / 365);
}

std::string TableVersionAccepted(const std::string& accept) {
  // Media types in the client's order of preference; the first one this
  // server can produce wins (a plain JSON one means: no table).
  for (const auto& entry : Split(accept, ',', /*skip_empty=*/true)) {
    std::vector<std::string> parts = Split(entry, ';', /*skip_empty=*/true);
    if (parts.empty()) continue;
    const std::string media(Trim(parts[0]));
    if (media != "application/json" && media != "*/*" && media != "application/*") continue;
    std::map<std::string, std::string> params;
    for (size_t i = 1; i < parts.size(); i++) {
      auto eq = parts[i].find('=');
      if (eq == std::string::npos) continue;
      params[std::string(Trim(std::string_view(parts[i]).substr(0, eq)))] =
          std::string(Trim(std::string_view(parts[i]).substr(eq + 1)));
    }
    if (!params.count("as")) return "";
    if (params["as"] == "Table" && params["g"] == "meta.k8s.io" && (params["v"] == "v1" || params["v"] == "v1beta1")) {
      return params["v"];
    }
  }
  return "";
}

}  // namespace terway::lab
