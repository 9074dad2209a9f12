#pragma once
// check_history_link() in parts, for the checked replay (checked_replay.cpp),
// which checks the hash of a link on another thread than the rest.

#include <cstdint>
#include <string>

#include "annals/aggregates/errors.hpp"
#include "annals/store/event_store.hpp"

namespace annals::detail {

/// The checks of check_history_link() that need no hash: `linked` has version
/// `expected_version` (0: any) and a predecessor.
/// Throws: HistoryIntegrityError naming the stream, version and position.
void check_link_shape(const LinkedEvent& linked, std::int64_t expected_version);

/// The error for an event whose stored hash is not `computed`, the hash of
/// its content chained to its predecessor.
HistoryIntegrityError hash_mismatch(const std::string& stream_id, std::int64_t version,
                                    std::int64_t position, const EventHash& stored,
                                    const EventHash& computed);

}  // namespace annals::detail
