// Fuzz target: a CNI result as a previous plugin hands it on (prevResult:
// ParseResult), and what the plugin does with one: render it in each spec
// version's shape, merge its own result after it (chaining), carry it to
// terwayd in the daemon protocol.
//
// Invariants of an accepted result:
//   - every number is held exactly as the input wrote it, in its type's
//     range, and interface indexes point at a listed interface (result.h);
//   - rendered in 1.1.0 (the protocol's shape) it parses back to itself;
//     rendered in an older version, to itself minus the fields that version
//     lacks;
//   - merged with another result, every interface index still points at
//     the interface it pointed at.
#include <cstdint>

#include "cni/json_text.h"
#include "cni/result.h"
#include "fuzz/fuzz_check.h"

using namespace terway;
using namespace terway::cni;

namespace {

// What a result looks like after a trip through version v's shape.
CniResult AsSeenIn(CniResult r, SpecVersion v) {
  if (v == SpecVersion::k110) return r;
  for (auto& i : r.interfaces) i.mtu.reset();
  for (auto& rt : r.routes) rt.mtu = rt.advmss = rt.priority = rt.table = rt.scope = std::nullopt;
  return r;
}

// Every number the input gave is held exactly (nothing wrapped through a
// narrower type on the way in): the parsed value equals the JSON number.
void CheckExact(const nlohmann::json& raw, const CniResult& r) {
  auto same = [](const nlohmann::json& in, const char* key, auto parsed, const std::string& where) {
    auto it = in.find(key);
    if (it == in.end() || it->is_null()) return;
    FUZZ_CHECK(parsed.has_value() && nlohmann::json(*parsed) == *it,
               where + "." + key + ": read " + (parsed ? std::to_string(*parsed) : "nothing") + " from " + it->dump());
  };
  if (auto ifs = raw.find("interfaces"); ifs != raw.end() && ifs->is_array())
    for (size_t i = 0; i < ifs->size(); i++) same((*ifs)[i], "mtu", r.interfaces.at(i).mtu, "interfaces[]");
  if (auto ips = raw.find("ips"); ips != raw.end() && ips->is_array())
    for (size_t i = 0; i < ips->size(); i++) same((*ips)[i], "interface", r.ips.at(i).interface, "ips[]");
  if (auto rts = raw.find("routes"); rts != raw.end() && rts->is_array()) {
    for (size_t i = 0; i < rts->size(); i++) {
      const Route& rt = r.routes.at(i);
      for (auto [key, field] : {std::pair{"mtu", rt.mtu}, {"advmss", rt.advmss}, {"priority", rt.priority},
                                {"table", rt.table}, {"scope", rt.scope}})
        same((*rts)[i], key, field, "routes[]");
    }
  }
}

void CheckIndexes(const CniResult& r, const char* what) {
  for (const auto& ip : r.ips) {
    if (!ip.interface) continue;
    FUZZ_CHECK(*ip.interface >= 0 && static_cast<size_t>(*ip.interface) < r.interfaces.size(), what);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)fuzz::ReportFd();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto j = ParseJsonText(fuzz::AsText(data, size), "prevResult");
  if (!j.ok()) return 0;
  auto r = ParseResult(*j);
  if (!r.ok()) return 0;
  CheckExact(*j, *r);
  CheckIndexes(*r, "parsed");
  for (const auto& rt : r->routes) FUZZ_CHECK(!rt.scope || *rt.scope <= 255, std::to_string(*rt.scope));

  for (SpecVersion v : {SpecVersion::k031, SpecVersion::k040, SpecVersion::k100, SpecVersion::k110}) {
    const std::string text = DumpJson(RenderResult(*r, v));
    auto again = ParseResult(fuzz::MustParse(text, "rendered result"));
    FUZZ_CHECK(again.ok(), again.ok() ? "" : again.error().ToString() + " in " + text.substr(0, 512));
    FUZZ_CHECK(*again == AsSeenIn(*r, v), std::string(SpecVersionString(v)) + ": " + text.substr(0, 512));
  }

  // Chaining: ours after theirs, then theirs after ours.
  CniResult ours;
  ours.interfaces.push_back(Interface{"eth0", "02:00:00:00:00:02", "/var/run/netns/p", std::nullopt});
  ours.ips.push_back(IpConfig{"198.18.0.10/32", "169.254.1.1", 0});
  for (const CniResult& merged : {MergeResults(*r, ours), MergeResults(ours, *r)}) {
    CheckIndexes(merged, "merged");
    FUZZ_CHECK(merged.ips.size() == r->ips.size() + 1, "merge lost an address");
  }
  const CniResult tail = MergeResults(*r, ours);
  FUZZ_CHECK(tail.interfaces[static_cast<size_t>(*tail.ips.back().interface)].name == "eth0",
             "our address no longer points at our interface");
  return 0;
}
