#include "cloud/credentials.h"

#include <openssl/evp.h>

#include <fstream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

namespace terway::cloud {
namespace {

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};

const EVP_CIPHER* AesCbcFor(size_t key_len) {
  switch (key_len) {
    case 16: return EVP_aes_128_cbc();
    case 24: return EVP_aes_192_cbc();
    case 32: return EVP_aes_256_cbc();
    default: return nullptr;
  }
}

Result<std::string> Base64Decode(const std::string& in) {
  std::string s;
  for (char c : in) {
    if (c != '\n' && c != '\r' && c != ' ') s.push_back(c);
  }
  if (s.size() % 4 != 0) return MakeError(ErrorCode::kInvalidArgument, "bad base64 length");
  std::string out(s.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (n < 0) return MakeError(ErrorCode::kInvalidArgument, "bad base64");
  // EVP_DecodeBlock counts padding as zero bytes; drop them.
  size_t pad = 0;
  if (!s.empty() && s.back() == '=') pad++;
  if (s.size() > 1 && s[s.size() - 2] == '=') pad++;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

Result<std::string> Decrypt(const std::string& b64, const std::string& keyring) {
  const EVP_CIPHER* cipher = AesCbcFor(keyring.size());
  if (cipher == nullptr) {
    return Errorf(ErrorCode::kInvalidArgument, "keyring is {} bytes; AES needs 16, 24 or 32",
                  keyring.size());
  }
  TERWAY_ASSIGN_OR_RETURN(std::string data, Base64Decode(b64));
  if (data.size() < 32 || data.size() % 16 != 0) {
    return MakeError(ErrorCode::kInvalidArgument, "ciphertext is not IV + whole AES blocks");
  }
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter> ctx(EVP_CIPHER_CTX_new());
  auto* key = reinterpret_cast<const unsigned char*>(keyring.data());
  auto* iv = reinterpret_cast<const unsigned char*>(data.data());
  std::string out(data.size(), '\0');
  int len1 = 0, len2 = 0;
  if (EVP_DecryptInit_ex(ctx.get(), cipher, nullptr, key, iv) != 1 ||
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len1,
                        reinterpret_cast<const unsigned char*>(data.data() + 16),
                        static_cast<int>(data.size() - 16)) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len1, &len2) != 1) {
    return MakeError(ErrorCode::kInvalidArgument, "AES-CBC decryption failed (wrong keyring?)");
  }
  out.resize(static_cast<size_t>(len1 + len2));
  return out;
}

}  // namespace

StaticCredentialProvider::StaticCredentialProvider(std::string access_key_id,
                                                   std::string access_key_secret,
                                                   std::string security_token) {
  cred_.access_key_id = std::move(access_key_id);
  cred_.access_key_secret = std::move(access_key_secret);
  cred_.security_token = std::move(security_token);
}

Result<Credential> StaticCredentialProvider::Get() {
  if (cred_.access_key_id.empty() || cred_.access_key_secret.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "access_key/access_secret are empty: set both, or use credential_path or the "
                     "instance RAM role");
  }
  return cred_;
}

Result<Credential> CachingCredentialProvider::Get() {
  std::lock_guard l(mu_);
  auto now = clock_->Now();
  if (cached_ && (!cached_->expiration || now + margin_ < *cached_->expiration)) return *cached_;
  auto fresh = Fetch();
  if (!fresh.ok()) {
    if (cached_ && cached_->expiration && now < *cached_->expiration) return *cached_;
    return std::move(fresh).error().Wrap("getting credentials from " + Name());
  }
  if (fresh->expiration && *fresh->expiration <= now) {
    return Errorf(ErrorCode::kPermission, "credentials from {} expired at {}", Name(),
                  FormatIso8601(*fresh->expiration));
  }
  cached_ = std::move(fresh).value();
  return *cached_;
}

EncryptedFileCredentialProvider::EncryptedFileCredentialProvider(std::string path,
                                                                 const Clock* clock,
                                                                 std::chrono::seconds margin)
    : CachingCredentialProvider(clock, margin), path_(std::move(path)) {}

Result<Credential> EncryptedFileCredentialProvider::Parse(const std::string& content) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(content);
  } catch (const std::exception& e) {
    return Errorf(ErrorCode::kInvalidArgument, "not JSON: {}", e.what());
  }
  auto field = [&](const char* key) -> Result<std::string> {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) {
      return Errorf(ErrorCode::kInvalidArgument, "field \"{}\" missing or not a string", key);
    }
    return it->get<std::string>();
  };
  TERWAY_ASSIGN_OR_RETURN(std::string keyring, field("keyring"));
  Credential c;
  for (auto [key, out] : {std::pair{"access.key.id", &c.access_key_id},
                          std::pair{"access.key.secret", &c.access_key_secret},
                          std::pair{"security.token", &c.security_token}}) {
    TERWAY_ASSIGN_OR_RETURN(std::string enc, field(key));
    TERWAY_ASSIGN_OR_RETURN_CTX(*out, Decrypt(enc, keyring), fmt::format("field \"{}\"", key));
  }
  TERWAY_ASSIGN_OR_RETURN(std::string exp, field("expiration"));
  Clock::TimePoint t;
  if (!ParseIso8601(exp, &t)) {
    return Errorf(ErrorCode::kInvalidArgument, "expiration \"{}\" is not YYYY-MM-DDTHH:MM:SSZ", exp);
  }
  c.expiration = t;
  return c;
}

Result<std::string> EncryptedFileCredentialProvider::Encrypt(const std::string& plaintext,
                                                             const std::string& keyring,
                                                             const std::string& iv) {
  const EVP_CIPHER* cipher = AesCbcFor(keyring.size());
  if (cipher == nullptr || iv.size() != 16) {
    return MakeError(ErrorCode::kInvalidArgument, "keyring must be 16/24/32 bytes and iv 16");
  }
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter> ctx(EVP_CIPHER_CTX_new());
  std::string out(plaintext.size() + 32, '\0');
  int len1 = 0, len2 = 0;
  if (EVP_EncryptInit_ex(ctx.get(), cipher, nullptr,
                         reinterpret_cast<const unsigned char*>(keyring.data()),
                         reinterpret_cast<const unsigned char*>(iv.data())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len1,
                        reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len1, &len2) != 1) {
    return MakeError(ErrorCode::kInternal, "AES-CBC encryption failed");
  }
  out.resize(static_cast<size_t>(len1 + len2));
  std::string blob = iv + out;
  std::string b64(4 * ((blob.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                          reinterpret_cast<const unsigned char*>(blob.data()),
                          static_cast<int>(blob.size()));
  b64.resize(static_cast<size_t>(n));
  return b64;
}

Result<Credential> EncryptedFileCredentialProvider::Fetch() {
  std::ifstream in(path_);
  if (!in) return SysError("reading credential_path " + path_);
  std::stringstream ss;
  ss << in.rdbuf();
  TERWAY_ASSIGN_OR_RETURN_CTX(Credential c, Parse(ss.str()), "parsing credential_path " + path_);
  return c;
}

RamRoleCredentialProvider::RamRoleCredentialProvider(InstanceMetadata* metadata,
                                                     const Clock* clock, std::string role,
                                                     std::chrono::seconds margin)
    : CachingCredentialProvider(clock, margin), metadata_(metadata), role_(std::move(role)) {}

Result<Credential> RamRoleCredentialProvider::Fetch() {
  std::string role;
  {
    std::lock_guard l(role_mu_);
    role = role_;
  }
  if (role.empty()) {
    TERWAY_ASSIGN_OR_RETURN(auto roles, metadata_->RamRoles());
    if (roles.empty()) {
      return MakeError(ErrorCode::kPermission,
                       "no RAM role is attached to this instance: attach one, or set "
                       "access_key/access_secret or credential_path");
    }
    role = roles.front();
    std::lock_guard l(role_mu_);
    role_ = role;
  }
  TERWAY_ASSIGN_OR_RETURN(std::string body, metadata_->Get("ram/security-credentials/" + role));
  try {
    auto j = nlohmann::json::parse(body);
    if (j.contains("Code") && j["Code"].is_string() && j["Code"] != "Success") {
      return Errorf(ErrorCode::kPermission, "RAM role {}: metadata answered Code {}", role,
                    j["Code"].get<std::string>());
    }
    Credential c;
    c.access_key_id = j.at("AccessKeyId").get<std::string>();
    c.access_key_secret = j.at("AccessKeySecret").get<std::string>();
    c.security_token = j.at("SecurityToken").get<std::string>();
    std::string exp = j.at("Expiration").get<std::string>();
    Clock::TimePoint t;
    if (!ParseIso8601(exp, &t)) {
      return Errorf(ErrorCode::kInvalidArgument, "RAM role {}: bad Expiration \"{}\"", role, exp);
    }
    c.expiration = t;
    return c;
  } catch (const std::exception& e) {
    return Errorf(ErrorCode::kInvalidArgument, "RAM role {}: bad credentials document: {}", role,
                  e.what());
  }
}

}  // namespace terway::cloud
