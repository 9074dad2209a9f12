#pragma once
// Validation of append and read input, shared by the stores so both reject
// the same things with the same messages, before anything is written or read.

#include <string_view>
#include <vector>

#include "annals/core/error.hpp"

#include "annals/store/event_store.hpp"
#include "annals/store/snapshot_store.hpp"

namespace annals::detail {

// Checks every stream id, event type, schema version, event id and JSON text in
// `batch`; fills in missing event ids (UUIDv7) and lowercases given ones.
// If `generated_first_ids` is given, it receives per stream of `batch` whether
// its first event's id was generated here: such an append cannot be the retry
// of an earlier one, so the store need not look its id up.
// Throws: InvalidArgument naming the offending input; DuplicateEventId when one
// id appears twice in the batch. With `unique_index` (the store's own index
// refuses a second row with an id), only the ids given by the caller are
// compared with each other: a generated id differs from every other id this
// process generated, and a given one that matched it would meet the index.
void prepare_batch(std::vector<StreamAppend>& batch,
                   std::vector<bool>* generated_first_ids = nullptr, bool unique_index = false);

// Which field of a retried event differs from the event stored under its id
// ("type", "schema version", "payload", "metadata"); nullptr when they are
// the same. Payload and metadata compare byte for byte, as they are stored.
const char* differing_field(const EventData& given, std::string_view type, int schema_version,
                            std::string_view payload, std::string_view metadata) noexcept;

// The DuplicateEventId of a retry whose ids are stored where it would put them
// but whose content is not what was stored.
DuplicateEventId content_differs(const std::string& event_id, const std::string& stream_id,
                                 std::int64_t version, const char* field);

// Checks the arguments of a stream read (read_stream, read_stream_linked): a
// valid stream id, and a first version of at least 1 forward (0 backward: the
// stream's end).
// Throws: InvalidArgument naming the stream and the version.
void validate_read_stream(const std::string& stream_id, std::int64_t from_version,
                          Direction direction);

// Checks a snapshot before it is saved.
// Throws: InvalidArgument naming the stream and what is wrong.
void validate_snapshot(const Snapshot& snapshot);

// The stored form of `data` at its place in the store, hash chained to
// `previous` (the hash of the event at position - 1). Moves out of `data`.
RecordedEvent record(EventData&& data, const std::string& stream_id, std::int64_t version,
                     std::int64_t position, Timestamp recorded_at, const EventHash& previous);

// Smallest string greater than every string that starts with `prefix`; empty
// when there is none (a prefix of only 0xFF bytes).
std::string prefix_upper_bound(std::string prefix);

}  // namespace annals::detail
