#include "cni/protocol.h"

#include <sys/un.h>

#include <nlohmann/json.hpp>

#include "cni/json_text.h"

namespace terway::cni::protocol {

using nlohmann::json;

namespace {

constexpr std::pair<Op, std::string_view> kOps[] = {
    {Op::kAllocate, "allocate"}, {Op::kRelease, "release"}, {Op::kGet, "get"},
    {Op::kStatus, "status"},     {Op::kGc, "gc"},
    {Op::kPolicyExplain, "policy_explain"}, {Op::kPolicyShow, "policy_show"},
    {Op::kInspect, "inspect"},
};
constexpr std::pair<ErrorClass, std::string_view> kClasses[] = {
    {ErrorClass::kRetryable, "retryable"},     {ErrorClass::kNotFound, "not_found"},
    {ErrorClass::kInvalid, "invalid"},         {ErrorClass::kExhausted, "exhausted"},
    {ErrorClass::kUnavailable, "unavailable"}, {ErrorClass::kTimeout, "timeout"},
    {ErrorClass::kUnsupported, "unsupported"}, {ErrorClass::kInternal, "internal"},
};

static_assert(kMaxSocketPathBytes + 1 == sizeof(sockaddr_un{}.sun_path));

std::string Frame(const json& j) {
  // DumpJson: a message quoting non-UTF-8 bytes must not make the encoder
  // throw. It never emits a raw newline (strings escape it), which is what
  // makes the line framing unambiguous.
  std::string s = DumpJson(j);
  s.push_back('\n');
  return s;
}

std::string_view StripNewline(std::string_view f) {
  if (!f.empty() && f.back() == '\n') f.remove_suffix(1);
  if (!f.empty() && f.back() == '\r') f.remove_suffix(1);
  return f;
}

Result<json> ParseFrame(std::string_view frame, const char* what) {
  frame = StripNewline(frame);
  if (frame.size() > kMaxFrameBytes)
    return Errorf(ErrorCode::kInvalidArgument, "{} frame of {} bytes exceeds {} bytes", what, frame.size(),
                  kMaxFrameBytes);
  TERWAY_ASSIGN_OR_RETURN(json j, ParseJsonText(frame, what));
  if (!j.is_object()) return Errorf(ErrorCode::kInvalidArgument, "{} must be a JSON object", what);
  auto v = j.find("v");
  if (v == j.end() || !v->is_number_integer())
    return Errorf(ErrorCode::kInvalidArgument, "{} has no protocol version \"v\"", what);
  // Compared as read: get<int>() would wrap 4294967297 to a valid 1.
  if (!v->is_number_unsigned() || v->get<uint64_t>() != static_cast<uint64_t>(kProtocolVersion))
    return Errorf(ErrorCode::kInvalidArgument, "{} speaks protocol version {}, this side speaks {}", what, v->dump(),
                  kProtocolVersion);
  return j;
}

json BandwidthToJson(const Bandwidth& b) {
  return json{{"ingress_rate", b.ingress_rate}, {"ingress_burst", b.ingress_burst},
              {"egress_rate", b.egress_rate}, {"egress_burst", b.egress_burst}};
}

}  // namespace

std::string_view OpName(Op op) {
  for (const auto& [o, n] : kOps)
    if (o == op) return n;
  return "?";
}
std::optional<Op> ParseOp(std::string_view name) {
  for (const auto& [o, n] : kOps)
    if (n == name) return o;
  return std::nullopt;
}
std::string_view ErrorClassName(ErrorClass c) {
  for (const auto& [k, n] : kClasses)
    if (k == c) return n;
  return "internal";
}
std::optional<ErrorClass> ParseErrorClass(std::string_view name) {
  for (const auto& [k, n] : kClasses)
    if (n == name) return k;
  return std::nullopt;
}

Reply Reply::Fail(ErrorClass cls, std::string message) {
  Reply r;
  r.error = ReplyError{cls, std::move(message)};
  return r;
}

Reply Reply::FromError(const Error& e) {
  Reply r;
  r.error = ReplyErrorFromError(e);
  return r;
}

std::string EncodeRequest(const Request& req) {
  json j = json::object();
  j["v"] = kProtocolVersion;
  j["op"] = std::string(OpName(req.op));
  if (req.deadline_ms) j["deadline_ms"] = req.deadline_ms;
  if (!req.cni_version.empty()) j["cni_version"] = req.cni_version;
  if (!req.container_id.empty()) j["container_id"] = req.container_id;
  if (!req.netns.empty()) j["netns"] = req.netns;
  if (!req.ifname.empty()) j["ifname"] = req.ifname;
  if (req.pod != PodRef{})
    j["pod"] = json{{"namespace", req.pod.namespace_}, {"name", req.pod.name}, {"uid", req.pod.uid},
                    {"infra_container_id", req.pod.infra_container_id}};
  if (!req.cni_args.empty()) j["cni_args"] = req.cni_args;
  if (req.bandwidth) j["bandwidth"] = BandwidthToJson(*req.bandwidth);
  if (req.network != NetworkOptions{}) {
    json n = json::object();
    n["name"] = req.network.name;
    n["eniip_virtual_type"] = req.network.eniip_virtual_type;
    n["mtu"] = req.network.mtu;
    n["service_cidr"] = req.network.service_cidr;
    n["host_stack_cidrs"] = req.network.host_stack_cidrs;
    j["network"] = std::move(n);
  }
  if (req.prev_result) ResultToJson(*req.prev_result, j["prev_result"]);
  if (req.op == Op::kGc || !req.valid_attachments.empty()) {
    json a = json::array();
    for (const auto& at : req.valid_attachments)
      a.push_back(json{{"container_id", at.container_id}, {"ifname", at.ifname}});
    j["valid_attachments"] = std::move(a);
  }
  if (req.policy_query) {
    j["policy_query"] = json{{"from", req.policy_query->from}, {"to", req.policy_query->to},
                             {"protocol", req.policy_query->protocol}, {"port", req.policy_query->port}};
  }
  if (req.inspect_query) {
    j["inspect_query"] = json{{"view", req.inspect_query->view}, {"type", req.inspect_query->type},
                              {"name", req.inspect_query->name}};
  }
  return Frame(j);
}

Result<Request> DecodeRequest(std::string_view frame) {
  TERWAY_ASSIGN_OR_RETURN(json j, ParseFrame(frame, "request"));
  Request r;
  // json::value()/get() throw type_error on a wrongly typed field; this is
  // the codec's edge, so convert here.
  try {
    std::string op = j.value("op", std::string());
    auto parsed = ParseOp(op);
    if (!parsed) return Errorf(ErrorCode::kInvalidArgument, "request has unknown op {:?}", op);
    r.op = *parsed;
    if (auto d = j.find("deadline_ms"); d != j.end()) {
      // value<uint32_t>() would silently wrap a negative number.
      if (!d->is_number_unsigned() || d->get<uint64_t>() > UINT32_MAX)
        return MakeError(ErrorCode::kInvalidArgument, "deadline_ms must be an unsigned 32-bit integer");
      r.deadline_ms = d->get<uint32_t>();
    }
    r.cni_version = j.value("cni_version", std::string());
    r.container_id = j.value("container_id", std::string());
    r.netns = j.value("netns", std::string());
    r.ifname = j.value("ifname", std::string());
    if (auto p = j.find("pod"); p != j.end()) {
      r.pod.namespace_ = p->value("namespace", std::string());
      r.pod.name = p->value("name", std::string());
      r.pod.uid = p->value("uid", std::string());
      r.pod.infra_container_id = p->value("infra_container_id", std::string());
    }
    if (auto a = j.find("cni_args"); a != j.end())
      r.cni_args = a->get<std::map<std::string, std::string>>();
    if (auto b = j.find("bandwidth"); b != j.end()) {
      Bandwidth bw;
      for (auto [key, field] : {std::pair{"ingress_rate", &bw.ingress_rate}, {"ingress_burst", &bw.ingress_burst},
                                {"egress_rate", &bw.egress_rate}, {"egress_burst", &bw.egress_burst}}) {
        auto f = b->find(key);
        if (f == b->end()) continue;
        if (!f->is_number_unsigned())
          return Errorf(ErrorCode::kInvalidArgument, "bandwidth.{} must be a non-negative integer", key);
        *field = f->get<uint64_t>();
      }
      r.bandwidth = bw;
    }
    if (auto n = j.find("network"); n != j.end()) {
      r.network.name = n->value("name", std::string());
      r.network.eniip_virtual_type = n->value("eniip_virtual_type", std::string());
      auto mtu = OptUint(*n, "mtu", 65535);
      if (!mtu.ok()) return std::move(mtu).error().Wrap("request network");
      r.network.mtu = static_cast<int>(mtu->value_or(0));
      r.network.service_cidr = n->value("service_cidr", std::string());
      r.network.host_stack_cidrs = n->value("host_stack_cidrs", std::vector<std::string>{});
    }
    if (auto p = j.find("prev_result"); p != j.end()) {
      auto pr = ParseResult(*p);
      if (!pr.ok()) return std::move(pr).error().Wrap("request prev_result");
      r.prev_result = std::move(*pr);
    }
    if (auto a = j.find("valid_attachments"); a != j.end()) {
      if (!a->is_array()) return MakeError(ErrorCode::kInvalidArgument, "valid_attachments must be an array");
      for (const auto& e : *a)
        r.valid_attachments.push_back(
            Attachment{e.at("container_id").get<std::string>(), e.value("ifname", std::string())});
    }
    if (auto q = j.find("policy_query"); q != j.end()) {
      if (!q->is_object()) return MakeError(ErrorCode::kInvalidArgument, "policy_query must be an object");
      PolicyQuery pq;
      pq.from = q->value("from", std::string());
      pq.to = q->value("to", std::string());
      pq.protocol = q->value("protocol", std::string("TCP"));
      auto port = q->find("port");
      if (port != q->end() && (!port->is_number_unsigned() || port->get<uint64_t>() > 65535))
        return MakeError(ErrorCode::kInvalidArgument, "policy_query.port must be a port number (0-65535)");
      if (port != q->end()) pq.port = port->get<uint16_t>();
      r.policy_query = pq;
    }
    if (auto q = j.find("inspect_query"); q != j.end()) {
      if (!q->is_object()) return MakeError(ErrorCode::kInvalidArgument, "inspect_query must be an object");
      r.inspect_query = InspectQuery{q->value("view", std::string()), q->value("type", std::string()),
                                     q->value("name", std::string())};
    }
  } catch (const json::exception& e) {
    return Errorf(ErrorCode::kInvalidArgument, "malformed {} request: {}", OpName(r.op), e.what());
  }
  if (r.op == Op::kPolicyExplain && (!r.policy_query || r.policy_query->from.empty() || r.policy_query->to.empty()))
    return MakeError(ErrorCode::kInvalidArgument, "policy_explain request needs policy_query.from and .to");
  if (r.op == Op::kInspect && (!r.inspect_query || r.inspect_query->view.empty()))
    return MakeError(ErrorCode::kInvalidArgument, "inspect request needs inspect_query.view");
  const bool per_container = r.op == Op::kAllocate || r.op == Op::kRelease || r.op == Op::kGet;
  if (per_container && r.container_id.empty())
    return Errorf(ErrorCode::kInvalidArgument, "{} request has no container_id", OpName(r.op));
  return r;
}

std::string EncodeReply(const Reply& reply) {
  json j = json::object();
  j["v"] = kProtocolVersion;
  j["ok"] = reply.ok();
  if (reply.error)
    j["error"] = json{{"class", std::string(ErrorClassName(reply.error->cls))}, {"message", reply.error->message}};
  if (reply.result) ResultToJson(*reply.result, j["result"]);
  if (reply.eni)
    j["eni"] = json{{"id", reply.eni->id}, {"mac", reply.eni->mac}, {"vswitch_id", reply.eni->vswitch_id},
                    {"gateway", reply.eni->gateway}};
  if (reply.status)
    j["status"] = json{{"ready", reply.status->ready}, {"existing_ok", reply.status->existing_ok},
                       {"message", reply.status->message}};
  if (reply.allowed) j["allowed"] = *reply.allowed;
  if (reply.text) j["text"] = *reply.text;
  return Frame(j);
}

Result<Reply> DecodeReply(std::string_view frame) {
  TERWAY_ASSIGN_OR_RETURN(json j, ParseFrame(frame, "reply"));
  Reply r;
  try {
    bool ok = j.at("ok").get<bool>();
    if (auto e = j.find("error"); e != j.end()) {
      std::string cls = e->value("class", std::string("internal"));
      // An unknown class from a newer daemon is treated as internal, not as
      // a decoding failure: the message still reaches the user.
      r.error = ReplyError{ParseErrorClass(cls).value_or(ErrorClass::kInternal), e->value("message", std::string())};
    }
    if (!ok && !r.error) r.error = ReplyError{ErrorClass::kInternal, "daemon reported failure without a reason"};
    if (ok && r.error) return MakeError(ErrorCode::kInvalidArgument, "reply says ok but carries an error");
    if (auto res = j.find("result"); res != j.end()) {
      auto pr = ParseResult(*res);
      if (!pr.ok()) return std::move(pr).error().Wrap("reply result");
      r.result = std::move(*pr);
    }
    if (auto e = j.find("eni"); e != j.end())
      r.eni = EniInfo{e->value("id", std::string()), e->value("mac", std::string()),
                      e->value("vswitch_id", std::string()), e->value("gateway", std::string())};
    if (auto s = j.find("status"); s != j.end())
      r.status = DaemonStatus{s->at("ready").get<bool>(), s->value("existing_ok", true),
                              s->value("message", std::string())};
    if (auto a = j.find("allowed"); a != j.end()) r.allowed = a->get<bool>();
    if (auto t = j.find("text"); t != j.end()) r.text = t->get<std::string>();
  } catch (const json::exception& e) {
    return Errorf(ErrorCode::kInvalidArgument, "malformed reply: {}", e.what());
  }
  return r;
}

Status CheckSocketPath(std::string_view path) {
  if (path.empty()) return MakeError(ErrorCode::kInvalidArgument, "daemon socket path is empty");
  if (auto nul = path.find('\0'); nul != std::string_view::npos)
    return Errorf(ErrorCode::kInvalidArgument, "daemon socket path {:?} contains a NUL byte at offset {}", path, nul);
  if (path.size() > kMaxSocketPathBytes)
    return Errorf(ErrorCode::kInvalidArgument,
                  "daemon socket path {:?} is {} bytes long; a unix socket path holds at most {} (sun_path): "
                  "use a shorter path",
                  path, path.size(), kMaxSocketPathBytes);
  return Ok();
}

ReplyError ReplyErrorFromError(const Error& e) {
  ErrorClass cls = ErrorClass::kInternal;
  switch (e.code) {
    case ErrorCode::kInvalidArgument: cls = ErrorClass::kInvalid; break;
    case ErrorCode::kNotFound: cls = ErrorClass::kNotFound; break;
    case ErrorCode::kExhausted: cls = ErrorClass::kExhausted; break;
    case ErrorCode::kConflict: cls = ErrorClass::kRetryable; break;
    case ErrorCode::kUnavailable: cls = ErrorClass::kUnavailable; break;
    case ErrorCode::kTimeout: cls = ErrorClass::kTimeout; break;
    case ErrorCode::kUnsupported: cls = ErrorClass::kUnsupported; break;
    default: cls = e.retryable ? ErrorClass::kRetryable : ErrorClass::kInternal; break;
  }
  return ReplyError{cls, e.ToString()};
}

Status FrameReader::Feed(std::string_view bytes) {
  buf_.append(bytes);
  // Only the unterminated tail can grow without bound; complete frames over
  // the cap are caught by the decoders.
  auto last_nl = buf_.rfind('\n');
  size_t tail = last_nl == std::string::npos ? buf_.size() : buf_.size() - last_nl - 1;
  if (tail > max_)
    return Errorf(ErrorCode::kInvalidArgument, "frame exceeds {} bytes without a newline", max_);
  return Ok();
}

std::optional<std::string> FrameReader::Next() {
  auto nl = buf_.find('\n');
  if (nl == std::string::npos) return std::nullopt;
  std::string frame = buf_.substr(0, nl);
  buf_.erase(0, nl + 1);
  return frame;
}

}  // namespace terway::cni::protocol
