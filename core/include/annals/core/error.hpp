#pragma once
/// Errors thrown by Annals. Every error derives from annals::Error, itself a
/// std::runtime_error, and carries structured fields besides its message, so a
/// caller can react to the kind of failure without parsing text.
///
/// Thread safety: error objects are immutable values; copying them is safe.

#include <cstdint>
#include <stdexcept>
#include <string>

#include "annals/core/expected_version.hpp"

namespace annals {

/// Base of every exception Annals throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// An append's expected version did not match the stream; nothing was written.
/// actual_version() is 0 when the stream does not exist.
class WrongExpectedVersion : public Error {
 public:
  WrongExpectedVersion(std::string stream_id, ExpectedVersion expected, std::int64_t actual);
  const std::string& stream_id() const noexcept { return stream_id_; }
  ExpectedVersion expected() const noexcept { return expected_; }
  std::int64_t actual_version() const noexcept { return actual_; }

 private:
  std::string stream_id_;
  ExpectedVersion expected_;
  std::int64_t actual_;
};

/// A stream that must exist does not.
class StreamNotFound : public Error {
 public:
  explicit StreamNotFound(std::string stream_id);
  const std::string& stream_id() const noexcept { return stream_id_; }

 private:
  std::string stream_id_;
};

/// An argument was rejected before anything was written (bad stream id, payload
/// that is not a JSON object, negative version, ...). The message names the input.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

/// An append was refused because of an event id, and nothing was written. Thrown when
/// - the same id appears twice in one append (in one stream or in two);
/// - an id is already stored somewhere other than the place of an idempotent
///   retry: in another stream, at another version (an expected version that
///   does not place the ids where they are), or with the ids in another order,
///   or only some of the append's ids stored there;
/// - the ids are stored exactly where a retry would find them, but an event's
///   content differs from what was stored under its id (type, schema version,
///   payload or metadata, compared byte for byte): the message says "the
///   content differs" and names the field. Such an append is not a retry, and
///   acknowledging it would tell the caller its different event was stored.
class DuplicateEventId : public Error {
 public:
  DuplicateEventId(std::string event_id, std::string stream_id, const std::string& detail);
  const std::string& event_id() const noexcept { return event_id_; }
  /// The stream the rejected append was aimed at.
  const std::string& stream_id() const noexcept { return stream_id_; }

 private:
  std::string event_id_;
  std::string stream_id_;
};

/// A stored event's type is not one the decoder knows. stream_id and version
/// are empty/0 when the event was decoded outside any stream context.
class UnknownEventType : public Error {
 public:
  UnknownEventType(std::string type, std::string stream_id, std::int64_t version);
  const std::string& type() const noexcept { return type_; }
  const std::string& stream_id() const noexcept { return stream_id_; }
  std::int64_t version() const noexcept { return version_; }

 private:
  std::string type_;
  std::string stream_id_;
  std::int64_t version_;
};

/// JSON could not be encoded or decoded into the wanted type.
class SerializationError : public Error {
 public:
  using Error::Error;
};

/// Stored history does not match its hash chain, or a file is not what it claims.
/// position() is the first position found wrong, 0 when not about one event.
class IntegrityError : public Error {
 public:
  IntegrityError(const std::string& message, std::int64_t position = 0);
  std::int64_t position() const noexcept { return position_; }

 private:
  std::int64_t position_;
};

/// The storage engine failed (I/O error, disk full, busy past the timeout, a file
/// that is not an Annals store). Carries the engine's primary and extended codes
/// (SQLite result codes for the SQLite store; 0 when not from the engine).
class StorageError : public Error {
 public:
  StorageError(const std::string& message, int code = 0, int extended_code = 0);
  int code() const noexcept { return code_; }
  int extended_code() const noexcept { return extended_code_; }

 private:
  int code_;
  int extended_code_;
};

}  // namespace annals
