#pragma once
// The retry bookkeeping ProjectionRunner and ConsumerGroupWorker share: how
// many attempts in a row failed at one position, and how long to wait before
// the next (ProjectionRunnerOptions: retry_backoff doubling per attempt, up to
// max_retry_backoff).

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "annals/projections/projection_runner.hpp"

namespace annals::detail {

// Failed attempts in a row at `position`, of an event's handler or (when
// `infrastructure`) of the read model or store there. Used by one thread.
struct RetryAttempts {
  std::int64_t position = 0;
  bool infrastructure = false;
  int count = 0;

  // Counts a failed attempt and returns how many failed in a row; a failure
  // of the other kind, or at another position, starts again at 1.
  int fail(std::int64_t at, bool of_infrastructure) noexcept {
    if (position != at || infrastructure != of_infrastructure) {
      *this = RetryAttempts{at, of_infrastructure, 0};
    }
    return ++count;
  }
};

// The wait before the attempt that follows failed attempt number `attempt`.
inline std::chrono::milliseconds retry_backoff(const ProjectionRunnerOptions& options,
                                               int attempt) {
  auto d = options.retry_backoff;
  for (int i = 1; i < attempt && d < options.max_retry_backoff; ++i) d *= 2;
  return std::min(d, options.max_retry_backoff);
}

}  // namespace annals::detail
