#include "netlink/types.h"

#include <sys/socket.h>

#include <charconv>

namespace terway::netlink {

Result<InetAddr> InetAddr::Parse(std::string_view text) {
  if (text.find(':') != std::string_view::npos) {
    TERWAY_ASSIGN_OR_RETURN(Ipv6Addr a, Ipv6Addr::Parse(text));
    return InetAddr(a);
  }
  TERWAY_ASSIGN_OR_RETURN(Ipv4Addr a, Ipv4Addr::Parse(text));
  return InetAddr(a);
}

int InetAddr::family() const { return is_v4() ? AF_INET : AF_INET6; }

std::string InetAddr::ToString() const { return is_v4() ? v4().ToString() : v6().ToString(); }

Result<InetPrefix> InetPrefix::Parse(std::string_view text) {
  size_t slash = text.find('/');
  TERWAY_ASSIGN_OR_RETURN(InetAddr a, InetAddr::Parse(text.substr(0, slash)));
  if (slash == std::string_view::npos) return Host(a);
  std::string_view len_text = text.substr(slash + 1);
  int len = -1;
  auto [ptr, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
  if (ec != std::errc() || ptr != len_text.data() + len_text.size() || len < 0 ||
      len > a.max_prefix_len()) {
    return Errorf(ErrorCode::kInvalidArgument, "bad prefix length in '{}'", text);
  }
  return InetPrefix(a, len);
}

std::string InetPrefix::ToString() const {
  return addr.ToString() + "/" + std::to_string(prefix_len);
}

int Rule::EffectiveFamily() const {
  if (family != 0) return family;
  if (src) return src->family();
  if (dst) return dst->family();
  return AF_INET;
}

}  // namespace terway::netlink
