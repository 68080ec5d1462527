#include "tools/lab/apiserver/protobuf.h"

#include <functional>

namespace terway::lab {
namespace {

using Json = nlohmann::json;

// One field of a protobuf message.
struct Field {
  uint32_t number = 0;
  uint32_t wire_type = 0;
  uint64_t varint = 0;
  std::string_view bytes;  // wire type 2
};

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool AtEnd() const { return pos_ >= data_.size(); }

  Result<Field> Next() {
    Field f;
    TERWAY_ASSIGN_OR_RETURN(uint64_t key, Varint());
    f.number = static_cast<uint32_t>(key >> 3);
    f.wire_type = static_cast<uint32_t>(key & 7);
    switch (f.wire_type) {
      case 0: {
        TERWAY_ASSIGN_OR_RETURN(f.varint, Varint());
        break;
      }
      case 1: TERWAY_TRY(Skip(8)); break;
      case 5: TERWAY_TRY(Skip(4)); break;
      case 2: {
        TERWAY_ASSIGN_OR_RETURN(uint64_t len, Varint());
        if (len > data_.size() - pos_) return Truncated();
        f.bytes = data_.substr(pos_, len);
        pos_ += len;
        break;
      }
      default:
        return Errorf(ErrorCode::kInvalidArgument, "protobuf: unsupported wire type {}", f.wire_type);
    }
    return f;
  }

 private:
  static Error Truncated() { return MakeError(ErrorCode::kInvalidArgument, "protobuf: truncated message"); }
  Result<uint64_t> Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) return Truncated();
      auto b = static_cast<uint8_t>(data_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    return MakeError(ErrorCode::kInvalidArgument, "protobuf: varint too long");
  }
  Status Skip(size_t n) {
    if (n > data_.size() - pos_) return Truncated();
    pos_ += n;
    return Ok();
  }
  std::string_view data_;
  size_t pos_ = 0;
};

// Calls fn for every field of a message.
Status ForEach(std::string_view msg, const std::function<Status(const Field&)>& fn) {
  Reader r(msg);
  while (!r.AtEnd()) {
    TERWAY_ASSIGN_OR_RETURN(Field f, r.Next());
    TERWAY_TRY(fn(f));
  }
  return Ok();
}

// Sets obj[key] to a string field; empty strings (proto2 serialises unset
// optional strings as "") stay absent, as in the JSON form.
Status Str(const Field& f, Json& obj, const char* key) {
  if (f.wire_type != 2) return Errorf(ErrorCode::kInvalidArgument, "protobuf: field {} is not a string", f.number);
  if (!f.bytes.empty()) obj[key] = std::string(f.bytes);
  return Ok();
}

// A map<string,string> entry: {key = 1, value = 2}.
Status MapEntry(const Field& f, Json& map) {
  std::string key, value;
  TERWAY_TRY(ForEach(f.bytes, [&](const Field& e) -> Status {
    if (e.wire_type != 2) return Ok();
    if (e.number == 1) key = e.bytes;
    if (e.number == 2) value = e.bytes;
    return Ok();
  }));
  map[key] = value;
  return Ok();
}

// Field numbers below are those of k8s.io/api and apimachinery's generated.proto.
Status ObjectMeta(std::string_view msg, Json& out) {
  return ForEach(msg, [&](const Field& f) -> Status {
    switch (f.number) {
      case 1: return Str(f, out, "name");
      case 2: return Str(f, out, "generateName");
      case 3: return Str(f, out, "namespace");
      case 11: return MapEntry(f, out["labels"]);
      case 12: return MapEntry(f, out["annotations"]);
      default: return Ok();
    }
  });
}

Status ContainerPort(std::string_view msg, Json& out) {
  return ForEach(msg, [&](const Field& f) -> Status {
    switch (f.number) {
      case 1: return Str(f, out, "name");
      case 3: out["containerPort"] = static_cast<int32_t>(f.varint); return Ok();
      case 4: return Str(f, out, "protocol");
      default: return Ok();
    }
  });
}

Status Container(std::string_view msg, Json& out) {
  return ForEach(msg, [&](const Field& f) -> Status {
    switch (f.number) {
      case 1: return Str(f, out, "name");
      case 2: return Str(f, out, "image");
      case 3: out["command"].push_back(std::string(f.bytes)); return Ok();
      case 4: out["args"].push_back(std::string(f.bytes)); return Ok();
      case 6: {
        Json p = Json::object();
        TERWAY_TRY(ContainerPort(f.bytes, p));
        out["ports"].push_back(p);
        return Ok();
      }
      default: return Ok();
    }
  });
}

Status PodSpec(std::string_view msg, Json& out) {
  return ForEach(msg, [&](const Field& f) -> Status {
    switch (f.number) {
      case 2: {
        Json c = Json::object();
        TERWAY_TRY(Container(f.bytes, c));
        out["containers"].push_back(c);
        return Ok();
      }
      case 3: return Str(f, out, "restartPolicy");
      case 10: return Str(f, out, "nodeName");
      case 11: out["hostNetwork"] = f.varint != 0; return Ok();
      default: return Ok();
    }
  });
}

}  // namespace

Result<Json> DecodeKubernetesProtobuf(std::string_view body) {
  static constexpr std::string_view kMagic("k8s\0", 4);
  if (body.substr(0, 4) != kMagic) {
    return MakeError(ErrorCode::kInvalidArgument, "protobuf body lacks the k8s magic prefix");
  }
  std::string api_version, kind;
  std::string_view raw;
  TERWAY_TRY(ForEach(body.substr(4), [&](const Field& f) -> Status {
    if (f.number == 1 && f.wire_type == 2) {  // TypeMeta
      return ForEach(f.bytes, [&](const Field& t) -> Status {
        if (t.wire_type == 2 && t.number == 1) api_version = t.bytes;
        if (t.wire_type == 2 && t.number == 2) kind = t.bytes;
        return Ok();
      });
    }
    if (f.number == 2 && f.wire_type == 2) raw = f.bytes;
    return Ok();
  }));
  if (api_version != "v1" || (kind != "Namespace" && kind != "ConfigMap" && kind != "Pod")) {
    return Errorf(ErrorCode::kUnsupported, "the lab API server decodes protobuf only for v1 Namespace, ConfigMap "
                                           "and Pod (got {} {}); send application/json", api_version, kind);
  }
  Json obj = {{"apiVersion", api_version}, {"kind", kind}, {"metadata", Json::object()}};
  TERWAY_TRY(ForEach(raw, [&](const Field& f) -> Status {
    if (f.wire_type != 2) return Ok();
    if (f.number == 1) return ObjectMeta(f.bytes, obj["metadata"]);
    if (kind == "Pod" && f.number == 2) {
      obj["spec"] = Json::object();
      return PodSpec(f.bytes, obj["spec"]);
    }
    if (kind == "ConfigMap" && f.number == 2) return MapEntry(f, obj["data"]);
    return Ok();
  }));
  return obj;
}

}  // namespace terway::lab
