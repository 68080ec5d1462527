#include "cni/json_text.h"

namespace terway::cni {

using nlohmann::json;

std::optional<size_t> FirstInvalidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  auto cont = [&](size_t at, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return at < n && p[at] >= lo && p[at] <= hi;
  };
  while (i < n) {
    const unsigned char c = p[i];
    size_t len = 0;
    if (c < 0x80) {
      len = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = cont(i + 1) ? 2 : 0;
    } else if (c >= 0xE0 && c <= 0xEF) {
      // E0: no overlong forms (second byte >= A0); ED: no UTF-16 surrogates
      // (second byte <= 9F).
      const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
      const unsigned char hi = c == 0xED ? 0x9F : 0xBF;
      len = cont(i + 1, lo, hi) && cont(i + 2) ? 3 : 0;
    } else if (c >= 0xF0 && c <= 0xF4) {
      // F0: no overlong forms; F4: nothing past U+10FFFF.
      const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
      const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
      len = cont(i + 1, lo, hi) && cont(i + 2) && cont(i + 3) ? 4 : 0;
    }
    if (len == 0) return i;
    i += len;
  }
  return std::nullopt;
}

Status CheckText(std::string_view what, std::string_view s) {
  if (auto nul = s.find('\0'); nul != std::string_view::npos)
    return Errorf(ErrorCode::kInvalidArgument, "{} contains a NUL byte at offset {}", what, nul);
  if (auto bad = FirstInvalidUtf8(s))
    return Errorf(ErrorCode::kInvalidArgument,
                  "{} is not valid UTF-8 (byte 0x{:02x} at offset {}): it cannot be carried in JSON; pass UTF-8 text",
                  what,
                  static_cast<unsigned char>(s[*bad]), *bad);
  return Ok();
}

namespace {

// Builds the document like json::parse, but takes a parse error as a value
// instead of throwing it. Why not exceptions: the first throw in the static
// plugin binary costs about 12 M instructions (libgcc sorts every unwind
// table on first use), 100 times the plugin's whole start-up, and the
// plugin parses stdin on every run, VERSION's empty stdin included.
// json_sax_dom_parser is the library's own DOM builder (nlohmann::detail,
// unchanged through 3.x); every event but the error goes to it.
class DomWithError {
 public:
  explicit DomWithError(json& root) : dom_(root, /*allow_exceptions=*/false) {}
  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(json::number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return dom_.number_unsigned(v); }
  bool number_float(json::number_float_t v, const json::string_t& s) { return dom_.number_float(v, s); }
  bool string(json::string_t& v) { return dom_.string(v); }
  bool binary(json::binary_t& v) { return dom_.binary(v); }
  bool start_object(std::size_t n) { return dom_.start_object(n); }
  bool key(json::string_t& v) { return dom_.key(v); }
  bool end_object() { return dom_.end_object(); }
  bool start_array(std::size_t n) { return dom_.start_array(n); }
  bool end_array() { return dom_.end_array(); }
  template <typename Exception>
  bool parse_error(std::size_t, const std::string&, const Exception& e) {
    error_ = e.what();
    return false;
  }
  const std::string& error() const { return error_; }

 private:
  nlohmann::detail::json_sax_dom_parser<json> dom_;
  std::string error_;
};

}  // namespace

Result<json> ParseJsonText(std::string_view text, std::string_view what) {
  if (auto nul = text.find('\0'); nul != std::string_view::npos)
    return Errorf(ErrorCode::kInvalidArgument, "{} contains a NUL byte at offset {} (JSON text never does)", what,
                  nul);
  json j;
  DomWithError sax(j);
  // The parser's message says where and why it stopped: what an operator
  // needs to fix a hand-written configuration.
  if (!json::sax_parse(text.begin(), text.end(), &sax) || !sax.error().empty())
    return Errorf(ErrorCode::kInvalidArgument, "{} is not valid JSON: {}", what,
                  sax.error().empty() ? std::string("parse error") : sax.error());
  return j;
}

std::string DumpJson(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Result<std::string> OptString(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return Errorf(ErrorCode::kInvalidArgument, "field \"{}\" must be a string", key);
  return it->get<std::string>();
}

Result<std::vector<std::string>> OptStrings(const json& obj, const char* key) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) return Errorf(ErrorCode::kInvalidArgument, "field \"{}\" must be an array", key);
  for (const auto& e : *it) {
    if (!e.is_string()) return Errorf(ErrorCode::kInvalidArgument, "field \"{}\" must hold strings", key);
    out.push_back(e.get<std::string>());
  }
  return out;
}

Result<std::optional<uint64_t>> OptUint(const json& obj, const char* key, uint64_t max) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<uint64_t>();
  // A JSON integer is held as uint64_t or int64_t (the parser picks unsigned
  // for values >= 0; code may build either): read it in its own type, so the
  // range check sees the exact value (get<int>() would have wrapped
  // 4294967297 to 1).
  if (it->is_number_unsigned() || (it->is_number_integer() && it->get<int64_t>() >= 0)) {
    const uint64_t v = it->is_number_unsigned() ? it->get<uint64_t>() : static_cast<uint64_t>(it->get<int64_t>());
    if (v > max)
      return Errorf(ErrorCode::kInvalidArgument, "field \"{}\" is {}, outside 0..{}", key, v, max);
    return std::optional<uint64_t>(v);
  }
  if (it->is_number_integer())
    return Errorf(ErrorCode::kInvalidArgument, "field \"{}\" is {}, outside 0..{}", key, it->get<int64_t>(), max);
  return Errorf(ErrorCode::kInvalidArgument, "field \"{}\" must be an integer in 0..{}", key, max);
}

}  // namespace terway::cni
