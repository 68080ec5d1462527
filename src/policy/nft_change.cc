#include "policy/nft_change.h"

namespace terway::policy {

namespace {

template <typename Map>
void ApplyMap(const Map& from, const Map& to, Map* into) {
  for (const auto& [name, value] : from) {
    if (!to.count(name)) into->erase(name);
  }
  for (const auto& [name, value] : to) (*into)[name] = value;
}

template <typename Map>
void DiffMap(const Map& a, const Map& b, Map* from, Map* to) {
  for (const auto& [name, value] : a) {
    auto it = b.find(name);
    if (it == b.end() || it->second != value) (*from)[name] = value;
  }
  for (const auto& [name, value] : b) {
    auto it = a.find(name);
    if (it == a.end() || it->second != value) (*to)[name] = value;
  }
}

}  // namespace

size_t NftModelChange::size() const {
  auto n = [](const NftModel& m) {
    return m.sets.size() + m.tuple_sets.size() + m.chains.size() + m.ingress.size() + m.egress.size() +
           m.counters.size();
  };
  return n(from) + n(to);
}

void ApplyChange(const NftModelChange& c, NftModel* m) {
  ApplyMap(c.from.sets, c.to.sets, &m->sets);
  ApplyMap(c.from.tuple_sets, c.to.tuple_sets, &m->tuple_sets);
  ApplyMap(c.from.chains, c.to.chains, &m->chains);
  ApplyMap(c.from.ingress, c.to.ingress, &m->ingress);
  ApplyMap(c.from.egress, c.to.egress, &m->egress);
  for (const auto& name : c.from.counters) {
    if (!c.to.counters.count(name)) m->counters.erase(name);
  }
  m->counters.insert(c.to.counters.begin(), c.to.counters.end());
}

NftModelChange ChangeBetween(const NftModel& a, const NftModel& b) {
  NftModelChange c;
  DiffMap(a.sets, b.sets, &c.from.sets, &c.to.sets);
  DiffMap(a.tuple_sets, b.tuple_sets, &c.from.tuple_sets, &c.to.tuple_sets);
  DiffMap(a.chains, b.chains, &c.from.chains, &c.to.chains);
  DiffMap(a.ingress, b.ingress, &c.from.ingress, &c.to.ingress);
  DiffMap(a.egress, b.egress, &c.from.egress, &c.to.egress);
  for (const auto& name : a.counters) {
    if (!b.counters.count(name)) c.from.counters.insert(name);
  }
  for (const auto& name : b.counters) {
    if (!a.counters.count(name)) c.to.counters.insert(name);
  }
  return c;
}

}  // namespace terway::policy
