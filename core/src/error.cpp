#include "annals/core/error.hpp"

#include <utility>

namespace annals {

namespace {
std::string version_text(std::int64_t actual) {
  return actual == 0 ? std::string("no stream") : "version " + std::to_string(actual);
}
}  // namespace

WrongExpectedVersion::WrongExpectedVersion(std::string stream_id, ExpectedVersion expected,
                                           std::int64_t actual)
    : Error("wrong expected version for stream '" + stream_id + "': expected " +
            expected.to_string() + ", actual " + version_text(actual)),
      stream_id_(std::move(stream_id)),
      expected_(expected),
      actual_(actual) {}

StreamNotFound::StreamNotFound(std::string stream_id)
    : Error("stream '" + stream_id + "' not found"), stream_id_(std::move(stream_id)) {}

DuplicateEventId::DuplicateEventId(std::string event_id, std::string stream_id,
                                   const std::string& detail)
    : Error("event id " + event_id + " in an append to stream '" + stream_id +
            "' is already used: " + detail),
      event_id_(std::move(event_id)),
      stream_id_(std::move(stream_id)) {}

UnknownEventType::UnknownEventType(std::string type, std::string stream_id, std::int64_t version)
    : Error("unknown event type '" + type + "'" +
            (stream_id.empty()
                 ? std::string()
                 : " in stream '" + stream_id + "' at version " + std::to_string(version))),
      type_(std::move(type)),
      stream_id_(std::move(stream_id)),
      version_(version) {}

IntegrityError::IntegrityError(const std::string& message, std::int64_t position)
    : Error(message), position_(position) {}

StorageError::StorageError(const std::string& message, int code, int extended_code)
    : Error(message), code_(code), extended_code_(extended_code) {}

}  // namespace annals
