#pragma once
/// Sealed heads: a signed statement of what a store held at one moment, so a
/// later check can prove the store has only grown since.
///
/// The hash chain (annals/core/event_hash.hpp) proves that no event between
/// position 1 and the head was altered; it cannot tell a store whose newest
/// events were cut off, or whose whole history was rewritten and re-hashed,
/// from one that was always so. A seal closes that gap: it states the store's
/// id, its head position, the chain hash at that position, the number of
/// events and the time, and is signed with an Ed25519 key kept outside the
/// store (docs/adr/0008-seals.md says why Ed25519 and not HMAC).
///
/// A seal file is one JSON object on one line (fields in this order):
///
///   {"annals_seal":1,"store_id":"<uuid>","head_position":10,
///    "head_hash":"<64 hex digits>","event_count":10,
///    "sealed_at":"2026-03-01T12:00:00.000000Z","algorithm":"ed25519",
///    "public_key":"<64 hex digits: the raw Ed25519 public key>",
///    "signature":"<128 hex digits>"}
///
/// An unsigned seal has "algorithm":"none" and neither public_key nor
/// signature. The signature covers seal_message(), a fixed text built from the
/// fields (not the JSON bytes), so re-spacing a seal file does not break it.
///
/// Thread safety: SealKey and Seal are immutable values once built; the
/// functions are reentrant.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "annals/core/clock.hpp"
#include "annals/core/event.hpp"
#include "annals/store/event_store.hpp"

namespace annals {

class SqliteEventStore;

/// An Ed25519 key: a private key (signs and verifies) or a public key only
/// (verifies). Files are PEM, as `openssl genpkey -algorithm ed25519` writes
/// them (private: PKCS#8 "PRIVATE KEY"; public: "PUBLIC KEY").
class SealKey {
 public:
  /// A new random private key.
  /// Throws: Error when OpenSSL cannot make one.
  static SealKey generate();
  /// Reads a PEM private or public Ed25519 key. An encrypted private key is
  /// refused (there is no prompt for a passphrase).
  /// Throws: InvalidArgument naming `file` when it is missing, unreadable, not
  /// PEM, or not an Ed25519 key. The message never contains key material.
  static SealKey load(const std::filesystem::path& file);
  /// The public key of a seal: 32 raw bytes as 64 hex digits.
  /// Throws: InvalidArgument when `hex` is not that.
  static SealKey from_public_hex(std::string_view hex);

  /// Writes the private key as PEM to a new file of mode 0600.
  /// Throws: InvalidArgument if this is a public key only; StorageError naming
  /// `file` when it exists already or cannot be written.
  void save_private(const std::filesystem::path& file) const;
  /// Writes the public key as PEM ("PUBLIC KEY"), replacing `file`.
  /// Throws: StorageError naming `file`.
  void save_public(const std::filesystem::path& file) const;

  bool has_private() const noexcept;
  /// The raw public key as 64 lowercase hex digits.
  const std::string& public_hex() const noexcept;
  /// A short name of the key: the first 16 hex digits of SHA-256 of the raw
  /// public key.
  std::string key_id() const;

  /// Signs `message`; 128 lowercase hex digits.
  /// Throws: InvalidArgument if this is a public key only.
  std::string sign(std::string_view message) const;
  /// Whether `signature_hex` is this key's signature of `message`.
  bool verify(std::string_view message, std::string_view signature_hex) const;

 private:
  struct Impl;
  explicit SealKey(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

/// What a seal states. head_position 0 (an empty store) has head_hash all
/// zeros, the value the chain starts from.
struct Seal {
  std::string store_id;
  std::int64_t head_position = 0;
  EventHash head_hash{};
  std::int64_t event_count = 0;
  Timestamp sealed_at{};
  std::string public_key;  ///< 64 hex digits; empty for an unsigned seal
  std::string signature;   ///< 128 hex digits; empty for an unsigned seal

  bool is_signed() const noexcept { return !signature.empty(); }
};

/// The bytes a seal's signature covers: "annals-seal-v1\n" followed by one
/// "name=value\n" line each for store_id, head_position, head_hash,
/// event_count, sealed_at (as in the JSON) and public_key, in that order.
std::string seal_message(const Seal& seal);

/// The seal file's text: one line, with a trailing "\n".
std::string to_seal_json(const Seal& seal);

/// Parses a seal file's text. `source` (a file name) is named in every error,
/// with the offending field.
/// Throws: InvalidArgument when the text is not one JSON object, is longer
/// than 64 KiB, or a field is missing, unknown, of the wrong type or invalid.
Seal parse_seal(std::string_view text, const std::string& source);

/// Reads and parses a seal file.
/// Throws: InvalidArgument naming `file` (missing, unreadable, malformed).
Seal read_seal_file(const std::filesystem::path& file);

/// Seals `store`: reads its id, head position, head hash and event count in
/// one write transaction, signs the statement with `key` (unsigned when
/// `key` is null) and records it in the store's seals table in the same
/// transaction, so the seal names a head the store really had. `clock`
/// stamps sealed_at. It does not walk the chain: a seal vouches for the head
/// as it is, so check the store with verify() (or verify_seal against the
/// previous seal) before sealing it.
/// Throws: InvalidArgument if `key` holds no private key; StorageError when
/// the store cannot be written (opened from a read-only file, for instance)
/// or has no id.
Seal seal(SqliteEventStore& store, const SealKey* key = nullptr,
          const Clock& clock = *SystemClock::shared());

/// What verify_seal() found wrong; none when the seal holds.
enum class SealProblem {
  none,
  bad_signature,     ///< the signature does not check: the seal was altered or forged
  wrong_key,         ///< signed, but not by the trusted key
  unsigned_seal,     ///< a trusted key was given, but the seal carries no signature
  other_store,       ///< the seal names another store id (or the store has none)
  truncated,         ///< the store ends before the sealed head position
  head_differs,      ///< the event at the sealed position has another hash: rewritten
  count_differs,     ///< the number of events up to the sealed head differs
  chain_broken,      ///< the hash chain itself fails (see VerifyResult)
};

/// The name of a problem as reports print it ("truncated", "head_differs", ...).
std::string_view to_string(SealProblem problem) noexcept;

struct SealVerifyResult {
  bool ok = false;
  SealProblem problem = SealProblem::none;
  std::string reason;                ///< empty when ok
  std::int64_t events_checked = 0;   ///< chain events walked
  std::int64_t head_position = 0;    ///< the store's head when the check ran
  std::int64_t first_bad_position = 0;  ///< chain_broken, head_differs: the position
  bool signature_checked = false;    ///< the seal was signed and its signature holds
  bool key_trusted = false;          ///< ... by the trusted key that was given
};

/// Checks `store` against `seal`, in this order: the signature (against
/// `trusted` when given: the seal must be signed by that key; otherwise
/// against the public key the seal carries, which proves the seal unaltered
/// but not who signed it), the store id, then the hash chain from position 1
/// to the current head: the sealed position must exist and hold the sealed
/// hash, with seal.event_count events up to it. Events appended after the
/// seal are checked as part of the chain and are fine. Streams from a cursor.
/// Returns the first problem found; never throws for a mismatch.
/// Throws: StorageError from the store.
SealVerifyResult verify_seal(const EventStore& store, const Seal& seal,
                             const SealKey* trusted = nullptr);

}  // namespace annals
