#include "annals/core/expected_version.hpp"

#include "annals/core/error.hpp"

namespace annals {

ExpectedVersion ExpectedVersion::exactly(std::int64_t n) {
  if (n < 0) {
    throw InvalidArgument("expected version must be >= 0, got " + std::to_string(n));
  }
  return ExpectedVersion(Kind::exactly, n);
}

std::string ExpectedVersion::to_string() const {
  switch (kind_) {
    case Kind::any:
      return "any";
    case Kind::no_stream:
      return "no_stream";
    case Kind::stream_exists:
      return "stream_exists";
    case Kind::exactly:
      return "exactly(" + std::to_string(value_) + ")";
  }
  return "?";
}

}  // namespace annals
