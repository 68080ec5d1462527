// Result<T>: the one error style of the project.
//
// Every fallible function that crosses a module boundary returns Result<T>
// (or Status == Result<void>). Exceptions never cross module boundaries: code
// that calls a throwing library (nlohmann::json, yaml-cpp, std::stoi) catches
// at its edge and converts to an Error with context.
#pragma once

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <fmt/format.h>

namespace terway {

// Broad error classes. Callers branch on these (retry or not, which CNI code,
// which HTTP status); the message is for humans.
enum class ErrorCode {
  kInvalidArgument,  // caller's input is wrong; retrying will not help
  kNotFound,
  kAlreadyExists,
  kConflict,         // concurrent operation on the same object; retryable
  kExhausted,        // a quota or address space is used up
  kUnavailable,      // peer down / connection error; retryable
  kTimeout,
  kPermission,
  kCloud,            // an error answered by the cloud API (see Error::cloud_code)
  kKernel,           // netlink / nftables / bpf failure (see Error::sys_errno)
  kUnsupported,      // feature missing on this kernel or build
  kInternal,         // a broken invariant
};

const char* ErrorCodeName(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  // Outermost context first when printed: "allocating IP for pod x: assigning
  // secondary IPs on eni-1: Throttling: request was denied".
  std::vector<std::string> context;
  int sys_errno = 0;           // for kKernel / syscalls
  std::string cloud_code;      // for kCloud: e.g. "InvalidVSwitchId.IpNotEnough"
  int http_status = 0;         // for kCloud / HTTP peers
  bool retryable = false;

  Error() = default;
  Error(ErrorCode c, std::string msg) : code(c), message(std::move(msg)) {}

  // Adds a layer of context ("what we were doing") and returns *this.
  Error& Wrap(std::string what) & {
    context.push_back(std::move(what));
    return *this;
  }
  Error&& Wrap(std::string what) && {
    context.push_back(std::move(what));
    return std::move(*this);
  }
  std::string ToString() const;
};

Error MakeError(ErrorCode code, std::string message);
// An error from a failed syscall: message is "<what>: <strerror(err)>".
Error SysError(const std::string& what, int err = errno);

template <typename... Args>
Error Errorf(ErrorCode code, fmt::format_string<Args...> f, Args&&... args) {
  return Error(code, fmt::format(f, std::forward<Args>(args)...));
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT
  Result(Error err) : v_(std::in_place_index<1>, std::move(err)) {}   // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

  T value_or(T fallback) const& { return ok() ? value() : std::move(fallback); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error err) : err_(std::move(err)) {}  // NOLINT
  bool ok() const { return !err_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const& { return *err_; }
  Error&& error() && { return std::move(*err_); }

 private:
  std::optional<Error> err_;
};

using Status = Result<void>;
inline Status Ok() { return Status(); }

}  // namespace terway

// TERWAY_TRY(expr): evaluate a Status/Result and return its error (wrapped
// with nothing) from the enclosing function if it failed.
#define TERWAY_CONCAT_INNER(a, b) a##b
#define TERWAY_CONCAT(a, b) TERWAY_CONCAT_INNER(a, b)

#define TERWAY_TRY(expr)                                   \
  do {                                                     \
    auto&& terway_try_r_ = (expr);                         \
    if (!terway_try_r_.ok())                               \
      return std::move(terway_try_r_).error();             \
  } while (0)

// TERWAY_TRY_CTX(expr, "context"): as TERWAY_TRY, adding context.
#define TERWAY_TRY_CTX(expr, ctx)                          \
  do {                                                     \
    auto&& terway_try_r_ = (expr);                         \
    if (!terway_try_r_.ok())                               \
      return std::move(terway_try_r_).error().Wrap(ctx);   \
  } while (0)

// TERWAY_ASSIGN_OR_RETURN(auto x, expr): declares/assigns lhs from a Result.
#define TERWAY_ASSIGN_OR_RETURN(lhs, expr) \
  TERWAY_ASSIGN_OR_RETURN_IMPL(TERWAY_CONCAT(terway_r_, __LINE__), lhs, expr, )
#define TERWAY_ASSIGN_OR_RETURN_CTX(lhs, expr, ctx) \
  TERWAY_ASSIGN_OR_RETURN_IMPL(TERWAY_CONCAT(terway_r_, __LINE__), lhs, expr, .Wrap(ctx))
#define TERWAY_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr, wrap) \
  auto tmp = (expr);                                       \
  if (!tmp.ok()) return std::move(tmp).error() wrap;       \
  lhs = std::move(tmp).value()
