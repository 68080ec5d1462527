#include "common/result.h"

namespace terway {

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "InvalidArgument";
    case ErrorCode::kNotFound: return "NotFound";
    case ErrorCode::kAlreadyExists: return "AlreadyExists";
    case ErrorCode::kConflict: return "Conflict";
    case ErrorCode::kExhausted: return "Exhausted";
    case ErrorCode::kUnavailable: return "Unavailable";
    case ErrorCode::kTimeout: return "Timeout";
    case ErrorCode::kPermission: return "Permission";
    case ErrorCode::kCloud: return "Cloud";
    case ErrorCode::kKernel: return "Kernel";
    case ErrorCode::kUnsupported: return "Unsupported";
    case ErrorCode::kInternal: return "Internal";
  }
  return "Unknown";
}

std::string Error::ToString() const {
  std::string out;
  for (auto it = context.rbegin(); it != context.rend(); ++it) {
    out += *it;
    out += ": ";
  }
  if (!cloud_code.empty()) {
    out += cloud_code;
    out += ": ";
  }
  out += message;
  return out;
}

Error MakeError(ErrorCode code, std::string message) {
  return Error(code, std::move(message));
}

Error SysError(const std::string& what, int err) {
  Error e(ErrorCode::kKernel, fmt::format("{}: {}", what, std::strerror(err)));
  e.sys_errno = err;
  if (err == ENOENT || err == ESRCH || err == ENODEV) e.code = ErrorCode::kNotFound;
  if (err == EEXIST) e.code = ErrorCode::kAlreadyExists;
  if (err == EPERM || err == EACCES) e.code = ErrorCode::kPermission;
  if (err == EOPNOTSUPP) e.code = ErrorCode::kUnsupported;
  return e;
}

}  // namespace terway
