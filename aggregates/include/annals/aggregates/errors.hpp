#pragma once
/// Errors of the aggregates module.
///
/// Thread safety: immutable values.

#include <string>

#include "annals/core/error.hpp"

namespace annals {

/// load() of an aggregate whose stream holds no event (at or below the wanted
/// version or time).
class AggregateNotFound : public Error {
 public:
  explicit AggregateNotFound(std::string stream_id, const std::string& detail = {});
  const std::string& stream_id() const noexcept { return stream_id_; }

 private:
  std::string stream_id_;
};

}  // namespace annals
