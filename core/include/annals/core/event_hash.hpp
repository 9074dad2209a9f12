#pragma once
/// The integrity chain. Each stored event carries
///
///   hash = SHA-256( previous_hash || canonical_bytes(event) )
///
/// where previous_hash is the hash of the event at position-1 (32 zero bytes for
/// position 1) and canonical_bytes is, in this order: position, version,
/// schema_version and recorded_at (microseconds) as 8-byte big-endian signed
/// integers, then stream_id, event_id, type, payload and metadata, each as an
/// 8-byte big-endian length followed by its bytes. Length prefixes make the
/// encoding unambiguous; the position makes a moved or swapped row detectable.
///
/// Changing this format breaks verification of every existing store: it is
/// versioned with the store schema (PRAGMA user_version).
///
/// Thread safety: pure functions.

#include <cstddef>
#include <string>

#include "annals/core/event.hpp"

namespace annals {

/// The hash of `event` chained to `previous` (event.hash is ignored).
/// Throws: Error when OpenSSL cannot compute SHA-256.
EventHash chain_hash(const EventHash& previous, const RecordedEvent& event);

/// What chain_hash() digests, in two steps, for a caller that writes the bytes
/// on one thread and digests them on another: chain_hash(previous, event) ==
/// sha256(buf, chained_bytes_size(event)) once write_chained_bytes(buf,
/// previous, event) has filled buf.
/// The number of bytes: previous_hash || canonical_bytes(event).
std::size_t chained_bytes_size(const RecordedEvent& event) noexcept;
/// Writes those bytes at `out`, which has room for chained_bytes_size(event);
/// returns the end of what it wrote.
char* write_chained_bytes(char* out, const EventHash& previous, const RecordedEvent& event) noexcept;
/// SHA-256 of `size` bytes at `data`. Throws: Error when OpenSSL fails.
EventHash sha256(const char* data, std::size_t size);

/// Lowercase hex of a hash.
std::string to_hex(const EventHash& hash);

/// Incremental checker for a chain read in position order.
class ChainVerifier {
 public:
  /// Feeds the next event. Returns false (and remembers why) at the first event
  /// whose position is not the next one or whose stored hash does not match.
  bool feed(const RecordedEvent& event);
  bool ok() const noexcept { return failed_at_ == 0; }
  /// First position that does not match; 0 while ok().
  std::int64_t failed_at() const noexcept { return failed_at_; }
  const std::string& reason() const noexcept { return reason_; }
  std::int64_t checked() const noexcept { return checked_; }

 private:
  EventHash previous_{};
  std::int64_t next_position_ = 1;
  std::int64_t checked_ = 0;
  std::int64_t failed_at_ = 0;
  std::string reason_;
};

}  // namespace annals
