#include "annals/aggregates/errors.hpp"

#include <utility>

namespace annals {

AggregateNotFound::AggregateNotFound(std::string stream_id, const std::string& detail)
    : Error("aggregate '" + stream_id + "' not found" + (detail.empty() ? "" : " " + detail)),
      stream_id_(std::move(stream_id)) {}

}  // namespace annals
