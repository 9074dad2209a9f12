#include "annals/aggregates/errors.hpp"

#include <utility>

namespace annals {

AggregateNotFound::AggregateNotFound(std::string stream_id, const std::string& detail)
    : Error("aggregate '" + stream_id + "' not found" + (detail.empty() ? "" : " " + detail)),
      stream_id_(std::move(stream_id)) {}

HistoryIntegrityError::HistoryIntegrityError(std::string stream_id, std::int64_t version,
                                             std::int64_t position, const std::string& detail)
    : IntegrityError("history of stream '" + stream_id + "' does not check at version " +
                         std::to_string(version) + " (position " + std::to_string(position) +
                         "): " + detail,
                     position),
      stream_id_(std::move(stream_id)),
      version_(version) {}

}  // namespace annals
