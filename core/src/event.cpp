#include "annals/core/event.hpp"

#include "annals/core/error.hpp"

namespace annals {

EventData EventData::from_json(std::string type, const Json& payload, const Json& metadata,
                               int schema_version) {
  if (!payload.is_object()) {
    throw InvalidArgument("payload of event type '" + type + "' must be a JSON object, got " +
                          payload.type_name());
  }
  if (!metadata.is_object()) {
    throw InvalidArgument("metadata of event type '" + type + "' must be a JSON object, got " +
                          metadata.type_name());
  }
  EventData data;
  data.type = std::move(type);
  data.schema_version = schema_version;
  try {
    // error_handler_t::strict: invalid UTF-8 inside a string is an error, not
    // silently replaced, so what is stored is what was given.
    data.payload = payload.dump();
    data.metadata = metadata.dump();
  } catch (const Json::exception& e) {
    throw InvalidArgument("cannot serialize event of type '" + data.type + "': " + e.what());
  }
  return data;
}

namespace {
Json parse_stored(const RecordedEvent& event, const std::string& text, const char* field) {
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    throw SerializationError(std::string(field) + " of event at position " +
                             std::to_string(event.position) + " (stream '" + event.stream_id +
                             "', version " + std::to_string(event.version) +
                             ") is not valid JSON: " + e.what());
  }
}
}  // namespace

Json RecordedEvent::payload_json() const { return parse_stored(*this, payload, "payload"); }
Json RecordedEvent::metadata_json() const { return parse_stored(*this, metadata, "metadata"); }

namespace {

// A SAX consumer that accepts everything and records only the kind of the
// top-level value; validating this way builds no DOM.
struct TopLevelKind : nlohmann::json_sax<Json> {
  int depth = 0;
  bool top_is_object = false;
  std::string error;

  bool null() override { return scalar(); }
  bool boolean(bool) override { return scalar(); }
  bool number_integer(number_integer_t) override { return scalar(); }
  bool number_unsigned(number_unsigned_t) override { return scalar(); }
  bool number_float(number_float_t, const string_t&) override { return scalar(); }
  bool string(string_t&) override { return scalar(); }
  bool binary(binary_t&) override { return scalar(); }
  bool start_object(std::size_t) override {
    if (depth == 0) top_is_object = true;
    return nest();
  }
  bool key(string_t&) override { return true; }
  bool end_object() override { return --depth, true; }
  bool start_array(std::size_t) override { return nest(); }
  bool end_array() override { return --depth, true; }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    error = ex.what();
    return false;
  }

 private:
  static constexpr int kMaxDepth = 512;
  bool scalar() { return true; }
  bool nest() {
    if (++depth > kMaxDepth) {
      error = "nested deeper than " + std::to_string(kMaxDepth) + " levels";
      return false;
    }
    return true;
  }
};

}  // namespace

void validate_json_object(std::string_view text, std::string_view what) {
  TopLevelKind sax;
  const bool ok = Json::sax_parse(text.begin(), text.end(), &sax);
  if (!ok) {
    throw InvalidArgument(std::string(what) + " is not valid JSON: " +
                          (sax.error.empty() ? std::string("parse error") : sax.error));
  }
  if (!sax.top_is_object) {
    throw InvalidArgument(std::string(what) + " must be a JSON object");
  }
}

}  // namespace annals
