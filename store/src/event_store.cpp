#include "annals/store/event_store.hpp"

#include <algorithm>

#include "annals/core/event_hash.hpp"
#include "annals/core/stream_id.hpp"

namespace annals {

bool EventFilter::matches(const RecordedEvent& event) const {
  if (!types.empty() && std::find(types.begin(), types.end(), event.type) == types.end()) {
    return false;
  }
  if (!stream_prefix.empty() && !event.stream_id.starts_with(stream_prefix)) return false;
  if (!category.empty() && stream_category(event.stream_id) != category) return false;
  return true;
}

VerifyResult EventStore::verify() const {
  ChainVerifier verifier;
  for (const RecordedEvent& event : read_all()) {
    if (!verifier.feed(event)) break;
  }
  VerifyResult result;
  result.ok = verifier.ok();
  result.events_checked = verifier.checked();
  result.first_bad_position = verifier.failed_at();
  result.reason = verifier.reason();
  return result;
}

}  // namespace annals
