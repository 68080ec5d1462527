// IpPool's dual-stack bookkeeping: pairing each IPv4 slot with an IPv6 of
// the same ENI, spare IPv6s, reconcile's IPv6 half (under mu_, no cloud
// call), and the unassign steps that give both families back (ops_mu_
// held, mu_ taken around the bookkeeping only). See pool.h's class comment.
#include <algorithm>
#include <set>

#include "common/ip.h"
#include "common/log.h"
#include "ipam/pool.h"
#include "ipam/pool_internal.h"

namespace terway::ipam {

Status IpPool::AddIpv6Locked(const std::string& eni_id, const std::vector<std::string>& ipv6s) {
  auto eni = enis_.find(eni_id);
  if (eni == enis_.end() || !Dual()) return Ok();
  std::set<std::string> known(eni->second.spare_ipv6.begin(), eni->second.spare_ipv6.end());
  known.insert(eni->second.held_ipv6.begin(), eni->second.held_ipv6.end());
  for (const auto& [ip, e] : ips_) {
    if (!e.ipv6.empty()) known.insert(e.ipv6);
  }
  for (const auto& v6 : ipv6s) {
    if (known.insert(v6).second) eni->second.spare_ipv6.push_back(v6);
  }
  return PairLocked(eni_id);
}

Status IpPool::PairLocked(const std::string& eni_id) {
  auto eni = enis_.find(eni_id);
  if (eni == enis_.end() || !Dual()) return Ok();
  auto& spare = eni->second.spare_ipv6;
  for (auto& [ip, e] : ips_) {
    if (spare.empty()) break;
    // A slot in use keeps what its pod was given; one being released is
    // on its way out.
    if (e.eni_id != eni_id || !e.ipv6.empty() || (e.use != IpUse::kIdle && e.use != IpUse::kReserved)) continue;
    TERWAY_TRY_CTX(store_->SetIpv6(ip, spare.front()), fmt::format("pairing on ENI {}", eni_id));
    e.ipv6 = spare.front();
    spare.erase(spare.begin());
    log::Info("ip_paired ip={} ipv6={} eni={}", ip, e.ipv6, eni_id);
  }
  NotifyWaitersLocked();
  return Ok();
}

Status IpPool::UnpairLocked(const std::string& ip, const std::string& why) {
  auto it = ips_.find(ip);
  if (it == ips_.end() || it->second.ipv6.empty()) return Ok();
  if (!it->second.container_id.empty()) {
    // As for a lost IPv4: the pod holds an address the cloud may hand to
    // someone else; its allocation ends and the daemon tears it down. The
    // old sandbox still has the IPv4 wired: the slot serves no pod until
    // on_address_lost has returned for it (ReturnTornDownLocked).
    log::Error("ipv6_lost_under_pod ip={} ipv6={} container={} reason=\"{}\"", ip, it->second.ipv6,
               it->second.container_id, why);
    TERWAY_ASSIGN_OR_RETURN(auto rec, store_->Release(it->second.container_id, Unix(clock_->Now()), std::nullopt));
    if (rec) lost_.push_back(*rec);
    it->second.container_id.clear();
    it->second.use = IpUse::kReleasing;
    it->second.awaiting_teardown = true;
  }
  TERWAY_TRY(store_->SetIpv6(ip, ""));
  log::Warn("ip_unpaired ip={} ipv6={} reason=\"{}\"", ip, it->second.ipv6, why);
  it->second.ipv6.clear();
  return Ok();
}

Status IpPool::ReconcileIpv6Locked(const std::string& eni_id, const std::vector<std::string>& cloud_ipv6) {
  if (!Dual()) return Ok();
  const std::set<std::string> listed(cloud_ipv6.begin(), cloud_ipv6.end());
  std::vector<std::string> lost;
  for (const auto& [ip, e] : ips_) {
    if (e.eni_id == eni_id && !e.ipv6.empty() && !listed.count(e.ipv6)) lost.push_back(ip);
  }
  for (const auto& ip : lost) TERWAY_TRY(UnpairLocked(ip, "the cloud no longer lists its IPv6"));
  auto eni = enis_.find(eni_id);
  if (eni != enis_.end()) {
    std::erase_if(eni->second.spare_ipv6, [&](const std::string& v6) { return !listed.count(v6); });
    // Gone meanwhile: nothing to put back in service after the teardown.
    std::erase_if(eni->second.held_ipv6, [&](const std::string& v6) { return !listed.count(v6); });
  }
  // IPv6s the cloud has and we do not know (assigned before a crash, or by
  // hand) are adopted as IPv4s are: they pair with unpaired slots.
  return AddIpv6Locked(eni_id, cloud_ipv6);
}

namespace {
// One address, however spelt ("fd00::a" and "fd00:0::a"): the kernel, the
// API and the cloud need not agree on the text.
bool SameIpv6(const std::string& a, const std::string& b) {
  if (a == b) return true;
  auto x = Ipv6Addr::Parse(a);
  auto y = Ipv6Addr::Parse(b);
  return x.ok() && y.ok() && *x == *y;
}
}  // namespace

IpPool::Ipv6Holder IpPool::FindIpv6Locked(const std::string& ipv6) const {
  for (const auto& [ip, e] : ips_) {
    if (!e.ipv6.empty() && SameIpv6(e.ipv6, ipv6)) return {Ipv6Holder::Kind::kPaired, e.ipv6, ip, e.eni_id};
  }
  for (const auto& [id, eni] : enis_) {
    for (const auto& v6 : eni.spare_ipv6) {
      if (SameIpv6(v6, ipv6)) return {Ipv6Holder::Kind::kSpare, v6, "", id};
    }
    for (const auto& v6 : eni.held_ipv6) {
      if (SameIpv6(v6, ipv6)) return {Ipv6Holder::Kind::kHeld, v6, "", id};
    }
  }
  return {Ipv6Holder::Kind::kUnknown, ipv6, "", ""};
}

Status IpPool::CheckAdoptedPairLocked(const std::string& ip, const Ipv6Holder& holder) const {
  const IpEntry& slot = ips_.at(ip);
  switch (holder.kind) {
    case Ipv6Holder::Kind::kUnknown:
      return Errorf(ErrorCode::kNotFound, "IPv6 {} is not an address of this node's ENIs (the cloud does not list it)",
                    holder.ipv6);
    case Ipv6Holder::Kind::kHeld:
      return Errorf(ErrorCode::kConflict,
                    "IPv6 {} is still wired in the sandbox of a pod whose IPv4 the cloud lost (its teardown is "
                    "pending); retry after it",
                    holder.ipv6);
    case Ipv6Holder::Kind::kPaired:
      if (holder.ip == ip) return Ok();
      if (const IpEntry& other = ips_.at(holder.ip); other.use == IpUse::kInUse) {
        return Errorf(ErrorCode::kConflict, "IPv6 {} is held by container {} (with IPv4 {}): two sandboxes claim it",
                      holder.ipv6, other.container_id, holder.ip);
      } else if (other.use == IpUse::kReleasing) {
        // Reclaim may be unassigning it from the cloud right now.
        return Errorf(ErrorCode::kConflict, "IPv6 {} (paired with IPv4 {}) is being released; retry", holder.ipv6,
                      holder.ip);
      }
      break;
    case Ipv6Holder::Kind::kSpare:
      break;
  }
  if (holder.eni_id != slot.eni_id) {
    return Errorf(ErrorCode::kConflict, "IPv6 {} is of ENI {} but IPv4 {} of ENI {}: a pod's pair is always one ENI's",
                  holder.ipv6, holder.eni_id, ip, slot.eni_id);
  }
  return Ok();
}

Status IpPool::PairForAdoptionLocked(const std::string& ip, const Ipv6Holder& holder) {
  IpEntry& slot = ips_.at(ip);
  const std::string old = slot.ipv6;
  const std::string& v6 = holder.ipv6;
  auto eni = enis_.find(slot.eni_id);
  auto to_spares = [&](const std::string& x) {
    if (!x.empty() && eni != enis_.end()) eni->second.spare_ipv6.push_back(x);
  };
  if (holder.kind == Ipv6Holder::Kind::kPaired) {
    if (holder.ip == ip) return Ok();
    IpEntry& other = ips_.at(holder.ip);
    // One IPv4 per IPv6 in the store too: the other slot lets go first.
    TERWAY_TRY(store_->SetIpv6(holder.ip, ""));
    if (Status w = store_->SetIpv6(ip, v6); !w.ok()) {
      if (Status undo = store_->SetIpv6(holder.ip, v6); !undo.ok()) {
        // Memory follows the store: the other slot is unpaired (served by
        // no pod until a refill pairs it), the IPv6 a spare.
        log::Warn("ip_repair_failed ip={} ipv6={} error=\"{}\"", holder.ip, v6, undo.error().ToString());
        other.ipv6.clear();
        to_spares(v6);
      }
      return w;
    }
    slot.ipv6 = v6;
    other.ipv6.clear();
    // The other slot takes this one's old IPv6 (or stays unpaired).
    if (!old.empty()) {
      if (Status w = store_->SetIpv6(holder.ip, old); w.ok()) {
        other.ipv6 = old;
      } else {
        log::Warn("ip_pair_failed ip={} ipv6={} error=\"{}\": the IPv6 is a spare until a refill pairs it",
                  holder.ip, old, w.error().ToString());
        to_spares(old);
      }
    }
    log::Warn("ip_repaired_for_adoption ip={} ipv6={} was={} other_ip={} other_ipv6={}", ip, v6, old, holder.ip,
              other.ipv6);
    return Ok();
  }
  // A spare of the same ENI (CheckAdoptedPairLocked let nothing else by).
  TERWAY_TRY(store_->SetIpv6(ip, v6));
  slot.ipv6 = v6;
  if (eni != enis_.end()) std::erase(eni->second.spare_ipv6, v6);
  to_spares(old);
  log::Warn("ip_repaired_for_adoption ip={} ipv6={} was={} from=spare", ip, v6, old);
  return Ok();
}

namespace {
bool AlreadyGone(const Status& st) { return !st.ok() && st.error().cloud_code == "InvalidIp.IpUnassigned"; }
}  // namespace

Status IpPool::ExecuteUnassign(const UnassignAction& u) {
  if (!u.ipv6s.empty()) {
    const std::set<std::string> going(u.ipv6s.begin(), u.ipv6s.end());
    // The slots (kReleasing: nothing takes them) are unpaired in the store
    // before the cloud call: a crash after the cloud applied it must not
    // leave a stored pair holding a dead IPv6. A crash before it leaves an
    // IPv6 the store does not know, which reconcile adopts (paired or
    // spare, reclaim gives it back). Memory keeps the pair until the
    // cloud has answered.
    std::vector<std::string> unpaired_in_store;
    {
      std::lock_guard l(mu_);
      for (const auto& ip : u.ips) {
        auto it = ips_.find(ip);
        if (it == ips_.end() || !going.count(it->second.ipv6)) continue;
        if (Status w = store_->SetIpv6(ip, ""); !w.ok()) {
          RepairInStoreLocked(unpaired_in_store);
          RestoreAfterFailedReleaseLocked(u.ips, w.error());
          return std::move(w).error().Wrap(fmt::format("unpairing the slots to reclaim on {}", u.eni_id));
        }
        unpaired_in_store.push_back(ip);
      }
    }
    Status st = provider_->UnassignIpv6(u.eni_id, u.ipv6s);
    std::lock_guard l(mu_);
    if (!st.ok() && !AlreadyGone(st)) {
      // The slots go back in service (or stay out while the cloud may have
      // applied it), paired again in the store; spares stay spares: the
      // next reclaim tries again.
      RepairInStoreLocked(unpaired_in_store);
      RestoreAfterFailedReleaseLocked(u.ips, st.error());
      (void)NoteCloudErrorLocked(st.error(), "");
      return std::move(st).error().Wrap(fmt::format("unassigning IPv6s from {}", u.eni_id));
    }
    auto eni = enis_.find(u.eni_id);
    if (eni != enis_.end()) std::erase_if(eni->second.spare_ipv6, [&](const std::string& v6) { return going.count(v6) > 0; });
    for (const auto& ip : unpaired_in_store) {
      auto it = ips_.find(ip);
      if (it == ips_.end()) continue;
      log::Info("ip_unpaired ip={} ipv6={} reason=reclaimed", ip, it->second.ipv6);
      it->second.ipv6.clear();
    }
  }
  if (u.ips.empty()) return Ok();
  Status st = provider_->UnassignIps(u.eni_id, u.ips);
  std::lock_guard l(mu_);
  if (!st.ok() && !AlreadyGone(st)) {
    // Their IPv6s are gone already: back in the pool they are unpaired, and
    // the next reclaim gives them back (or a refill pairs them first).
    RestoreAfterFailedReleaseLocked(u.ips, st.error());
    (void)NoteCloudErrorLocked(st.error(), "");
    return std::move(st).error().Wrap(fmt::format("unassigning IPs from {}", u.eni_id));
  }
  for (size_t i = 0; i < u.ips.size(); ++i) {
    if (Status d = DropIpLocked(u.ips[i], "reclaimed idle IP"); !d.ok()) {
      // Gone from the cloud, still in the store: out of service until the
      // next reconcile sees the cloud lists them no more and drops them.
      for (size_t j = i; j < u.ips.size(); ++j) {
        auto it = ips_.find(u.ips[j]);
        if (it != ips_.end() && it->second.use == IpUse::kReleasing) it->second.release_in_doubt = true;
      }
      return std::move(d).error().Wrap(fmt::format("recording the IPs unassigned from {}", u.eni_id));
    }
  }
  return Ok();
}

void IpPool::RepairInStoreLocked(const std::vector<std::string>& ips) {
  for (const auto& ip : ips) {
    auto it = ips_.find(ip);
    if (it == ips_.end() || it->second.ipv6.empty()) continue;
    if (Status w = store_->SetIpv6(ip, it->second.ipv6); !w.ok()) {
      // Memory follows the store: the IPv6 becomes a spare of its ENI (the
      // slot is unpaired, never served, until a refill pairs it again).
      log::Warn("ip_repair_failed ip={} ipv6={} error=\"{}\"", ip, it->second.ipv6, w.error().ToString());
      auto eni = enis_.find(it->second.eni_id);
      if (eni != enis_.end()) eni->second.spare_ipv6.push_back(it->second.ipv6);
      it->second.ipv6.clear();
    }
  }
}

void IpPool::GiveBackUnpaired(const std::string& eni_id, const std::vector<std::string>& ips) {
  if (ips.empty()) return;
  std::vector<std::string> mine;
  {
    std::lock_guard l(mu_);
    for (const auto& ip : ips) {
      auto it = ips_.find(ip);
      // Paired meanwhile (a spare arrived) or taken: not ours to undo.
      if (it != ips_.end() && it->second.ipv6.empty() && it->second.use == IpUse::kIdle) {
        it->second.use = IpUse::kReleasing;
        mine.push_back(ip);
      }
    }
  }
  if (mine.empty()) return;
  Status st = provider_->UnassignIps(eni_id, mine);
  std::lock_guard l(mu_);
  if (!st.ok() && !AlreadyGone(st)) {
    log::Warn("ip_undo_failed eni={} ips={} error=\"{}\": left unpaired for the next refill or reclaim", eni_id,
              mine.size(), st.error().ToString());
    RestoreAfterFailedReleaseLocked(mine, st.error());
    return;
  }
  for (const auto& ip : mine) {
    Status d = DropIpLocked(ip, "its IPv6 could not be assigned");
    if (!d.ok()) log::Warn("ip_forget_failed ip={} error=\"{}\"", ip, d.error().ToString());
  }
  log::Info("ips_given_back eni={} count={} reason=\"IPv6 assignment failed\"", eni_id, mine.size());
}

}  // namespace terway::ipam
