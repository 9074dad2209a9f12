#pragma once
/// Errors of the aggregates module.
///
/// Thread safety: immutable values.

#include <cstdint>
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

/// An event read for replay does not check against the hash chain (see
/// annals/aggregates/checked_read.hpp): the stored history was altered after
/// it was written. The message names the stream, the version, the position
/// and what does not match; position() is that event's position.
class HistoryIntegrityError : public IntegrityError {
 public:
  HistoryIntegrityError(std::string stream_id, std::int64_t version, std::int64_t position,
                        const std::string& detail);
  const std::string& stream_id() const noexcept { return stream_id_; }
  std::int64_t version() const noexcept { return version_; }

 private:
  std::string stream_id_;
  std::int64_t version_;
};

}  // namespace annals
