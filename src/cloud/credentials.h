// Where the AccessKey that signs API calls comes from. Three sources, as in
// Terway's eni_conf:
//   - static `access_key` / `access_secret`;
//   - `credential_path`: Terway's encrypted token file (the addon token that
//     ACK mounts at /var/addon/token-config), re-read before it expires;
//   - the instance's RAM role through the metadata service (STS credentials
//     with a SecurityToken, refreshed before Expiration).
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "cloud/metadata.h"
#include "common/clock.h"
#include "common/result.h"

namespace terway::cloud {

struct Credential {
  std::string access_key_id;
  std::string access_key_secret;
  std::string security_token;  // empty for a long-term AccessKey
  std::optional<Clock::TimePoint> expiration;
};

class CredentialProvider {
 public:
  virtual ~CredentialProvider() = default;
  // A credential valid for at least the provider's refresh margin. Thread safe.
  virtual Result<Credential> Get() = 0;
  virtual std::string Name() const = 0;
};

class StaticCredentialProvider : public CredentialProvider {
 public:
  StaticCredentialProvider(std::string access_key_id, std::string access_key_secret,
                           std::string security_token = "");
  Result<Credential> Get() override;
  std::string Name() const override { return "access_key"; }

 private:
  Credential cred_;
};

// Refreshing sources share this: cache the last credential and fetch a new one
// once `margin` before its Expiration, so a call is never signed with a token
// that dies in flight. If a refresh fails while the cached credential is still
// valid, the cached one is used (the metadata service may blip).
class CachingCredentialProvider : public CredentialProvider {
 public:
  CachingCredentialProvider(const Clock* clock, std::chrono::seconds margin)
      : clock_(clock), margin_(margin) {}
  Result<Credential> Get() final;

 protected:
  virtual Result<Credential> Fetch() = 0;

 private:
  const Clock* clock_;
  std::chrono::seconds margin_;
  std::mutex mu_;
  std::optional<Credential> cached_;
};

// Terway's credential_path file: JSON
//   {"access.key.id", "access.key.secret", "security.token", "expiration", "keyring"}
// where each of the first three is base64(IV[16] || AES-CBC(keyring, PKCS#7
// padded plaintext)), the AES key is the keyring string's bytes (16/24/32
// bytes long), and expiration is "YYYY-MM-DDTHH:MM:SSZ".
class EncryptedFileCredentialProvider : public CachingCredentialProvider {
 public:
  EncryptedFileCredentialProvider(std::string path, const Clock* clock,
                                  std::chrono::seconds margin = std::chrono::minutes(5));
  std::string Name() const override { return "credential_path " + path_; }

  // Parses the file's content (exposed for tests and for terway-cli).
  static Result<Credential> Parse(const std::string& content);
  // The inverse of the decryption above, for tests and for vpcsim/lab to write
  // such files. iv must be 16 bytes.
  static Result<std::string> Encrypt(const std::string& plaintext, const std::string& keyring,
                                     const std::string& iv);

 protected:
  Result<Credential> Fetch() override;

 private:
  std::string path_;
};

// STS credentials of the RAM role attached to the instance, from
// ram/security-credentials/<role>. The role is discovered from the listing
// when not given.
class RamRoleCredentialProvider : public CachingCredentialProvider {
 public:
  RamRoleCredentialProvider(InstanceMetadata* metadata, const Clock* clock,
                            std::string role = "",
                            std::chrono::seconds margin = std::chrono::minutes(5));
  std::string Name() const override {
    std::lock_guard l(role_mu_);
    return "ram_role " + (role_.empty() ? std::string("(discovering)") : role_);
  }

 protected:
  Result<Credential> Fetch() override;

 private:
  InstanceMetadata* metadata_;
  std::string role_;
  mutable std::mutex role_mu_;
};

}  // namespace terway::cloud
