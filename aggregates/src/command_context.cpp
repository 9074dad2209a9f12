#include "annals/aggregates/repository.hpp"

namespace annals {

Json CommandContext::to_metadata() const {
  Json metadata = Json::object();
  if (!correlation_id.empty()) metadata["correlation_id"] = correlation_id;
  if (!causation_id.empty()) metadata["causation_id"] = causation_id;
  if (!actor.empty()) metadata["actor"] = actor;
  return metadata;
}

}  // namespace annals
