// Status and StatusOr<T>: the error values of the message path (which never throws).
//
// A closed set of codes; each maps once to an HTTP status (base/status_http.h). The message is
// internal detail for logs and for the client's "what to fix" text: it must never hold a patient
// value (NISS, name, amount). Thread-compatible value types.
#ifndef PSL_BASE_STATUS_H_
#define PSL_BASE_STATUS_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace psl {

enum class StatusCode {
  kOk,
  kMalformed,           // bytes are not well-formed or break a parse limit -> 400
  kInvalid,             // well-formed but fails schema or business rules -> 422
  kTooLarge,            // over a size limit -> 413
  kUnsupported,         // wrong media type or unknown document -> 415
  kUnauthenticated,     // -> 401
  kForbidden,           // -> 403
  kNotFound,            // -> 404
  kConflict,            // -> 409
  kUnavailable,         // cannot commit now; retry later -> 503 + Retry-After
  kFailedPrecondition,  // configuration or environment not usable (start-up errors)
  kInternal,            // a bug -> 500
};

std::string_view StatusCodeName(StatusCode code);

namespace internal {
[[noreturn]] void DieOnValueOfError(const std::string& status);
}  // namespace internal

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  static Status Malformed(std::string m) { return {StatusCode::kMalformed, std::move(m)}; }
  static Status Invalid(std::string m) { return {StatusCode::kInvalid, std::move(m)}; }
  static Status TooLarge(std::string m) { return {StatusCode::kTooLarge, std::move(m)}; }
  static Status Unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
  static Status Unauthenticated(std::string m) {
    return {StatusCode::kUnauthenticated, std::move(m)};
  }
  static Status Forbidden(std::string m) { return {StatusCode::kForbidden, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status Conflict(std::string m) { return {StatusCode::kConflict, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status FailedPrecondition(std::string m) {
    return {StatusCode::kFailedPrecondition, std::move(m)};
  }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid: <message>", for logs and CLI output.
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Either a value or a non-OK Status. Accessing value() of an error is a bug: release-fatal (the
// process aborts with the status on stderr) rather than undefined or an exception on the message
// path.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  StatusOr(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(v_).ok()) {
      v_ = Status::Internal("StatusOr built from an OK status");
    }
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & {
    CheckOk();
    return *std::get_if<T>(&v_);
  }
  const T& value() const& {
    CheckOk();
    return *std::get_if<T>(&v_);
  }
  T&& value() && {
    CheckOk();
    return std::move(*std::get_if<T>(&v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  void CheckOk() const {
    if (!ok()) {
      internal::DieOnValueOfError(std::get_if<Status>(&v_)->ToString());
    }
  }
  std::variant<Status, T> v_;
};

}  // namespace psl

// Returns early with the status when `expr` is not OK.
#define PSL_RETURN_IF_ERROR(expr)           \
  do {                                      \
    ::psl::Status psl_status_tmp_ = (expr); \
    if (!psl_status_tmp_.ok())              \
      return psl_status_tmp_;               \
  } while (false)

#endif  // PSL_BASE_STATUS_H_
