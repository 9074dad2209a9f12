#include "annals/store/event_store.hpp"

#include "annals/core/event_hash.hpp"

namespace annals {

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
