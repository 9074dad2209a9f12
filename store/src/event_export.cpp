// JSON Lines export and import (format in annals/store/event_export.hpp).
//
// Parsing a line keeps payload and metadata byte for byte: the line's nesting
// depth is checked first (detail::json_text_nested_deeper_than, a byte scan),
// then the line is validated as one JSON object by validate_json_object, then
// a small scanner walks the top-level object and records the byte range of
// each member's value. Scalars are parsed from their ranges
// with nlohmann; payload and metadata are copied from theirs unchanged. The
// scanner relies on the validation that ran before it, so it only needs to
// find the ends of strings and of nested values.
//
// Import writes with its own connection inside one BEGIN IMMEDIATE
// transaction, after opening the file as a SqliteEventStore once (which
// creates or migrates the schema and refuses files that are not stores).

#include "annals/store/event_export.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <sqlite3.h>

#include <array>
#include <istream>
#include <limits>
#include <optional>
#include <ostream>
#include <streambuf>

#include "annals/core/error.hpp"
#include "annals/core/event_hash.hpp"
#include "annals/core/event_id.hpp"
#include "annals/core/stream_id.hpp"
#include "annals/store/sqlite_event_store.hpp"
#include "export_input.hpp"
#include "sqlite_schema.hpp"
#include "annals/store/internal/sqlite_support.hpp"

namespace annals {

namespace {

// ---- writing -----------------------------------------------------------------

// Can `text` (a JSON object) be embedded in a line as it is?
bool embeddable(std::string_view text) {
  return !text.empty() && text.front() == '{' && text.back() == '}' &&
         text.find_first_of("\r\n") == std::string_view::npos;
}

void append_json_string(std::string& out, std::string_view text) {
  out += Json(std::string(text)).dump();
}

void append_object_field(std::string& out, const char* name, std::string_view text) {
  if (embeddable(text)) {
    out += ",\"";
    out += name;
    out += "\":";
    out += text;
  } else {
    out += ",\"";
    out += name;
    out += "_text\":";
    append_json_string(out, text);
  }
}

// ---- parsing -----------------------------------------------------------------

std::string where(std::int64_t line_number) {
  return line_number > 0 ? "line " + std::to_string(line_number) : std::string("export line");
}

// Index just past the string that starts at text[i] == '"'.
std::size_t skip_string(std::string_view text, std::size_t i) {
  for (++i; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == '"') {
      return i + 1;
    }
  }
  return text.size();
}

std::size_t skip_ws(std::string_view text, std::size_t i) {
  while (i < text.size() &&
         (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) {
    ++i;
  }
  return i;
}

// Index just past the value that starts at text[i] (valid JSON assumed).
std::size_t skip_value(std::string_view text, std::size_t i) {
  if (text[i] == '"') return skip_string(text, i);
  if (text[i] == '{' || text[i] == '[') {
    int depth = 0;
    while (i < text.size()) {
      const char c = text[i];
      if (c == '"') {
        i = skip_string(text, i);
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (--depth == 0) return i + 1;
      }
      ++i;
    }
    return text.size();
  }
  while (i < text.size() && text[i] != ',' && text[i] != '}' && text[i] != ']' &&
         text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r') {
    ++i;
  }
  return i;
}

enum Field : std::size_t {
  kPosition,
  kStreamId,
  kVersion,
  kEventId,
  kType,
  kSchemaVersion,
  kRecordedAt,
  kPayload,
  kPayloadText,
  kMetadata,
  kMetadataText,
  kHash,
  kFieldCount
};

constexpr std::array<std::string_view, kFieldCount> kFieldNames = {
    "position",   "stream_id",    "version",  "event_id",      "type", "schema_version",
    "recorded_at", "payload",     "payload_text", "metadata", "metadata_text", "hash"};

class LineParser {
 public:
  LineParser(std::string_view line, std::int64_t line_number)
      : line_(line), where_(annals::where(line_number)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& why) const {
    throw InvalidArgument(where_ + ": field '" + field + "' " + why);
  }

  // Records the value range of each top-level member.
  void scan() {
    std::size_t i = skip_ws(line_, 0) + 1;  // past '{'
    for (;;) {
      i = skip_ws(line_, i);
      if (line_[i] == '}') return;
      const std::size_t key_end = skip_string(line_, i);
      const std::string key = Json::parse(line_.substr(i, key_end - i)).get<std::string>();
      i = skip_ws(line_, key_end) + 1;  // past ':'
      i = skip_ws(line_, i);
      const std::size_t value_end = skip_value(line_, i);
      std::size_t field = kFieldCount;
      for (std::size_t f = 0; f < kFieldCount; ++f) {
        if (kFieldNames[f] == key) field = f;
      }
      if (field == kFieldCount) {
        throw InvalidArgument(where_ + ": unknown field '" + key + "'");
      }
      if (spans_[field]) fail(key, "appears more than once");
      spans_[field] = line_.substr(i, value_end - i);
      i = skip_ws(line_, value_end);
      if (line_[i] == ',') ++i;
    }
  }

  std::string_view required(Field f) const {
    if (!spans_[f]) fail(std::string(kFieldNames[f]), "is missing");
    return *spans_[f];
  }

  std::int64_t integer(Field f, std::int64_t min, std::int64_t max) const {
    const std::string name(kFieldNames[f]);
    const Json value = Json::parse(required(f));
    if (!value.is_number_integer()) fail(name, "must be an integer, got " + std::string(required(f)));
    if (value.is_number_unsigned() &&
        value.get<std::uint64_t>() > static_cast<std::uint64_t>(max)) {
      fail(name, "is out of range: " + std::string(required(f)));
    }
    const auto v = value.get<std::int64_t>();
    if (v < min || v > max) {
      fail(name, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                     ", got " + std::to_string(v));
    }
    return v;
  }

  std::string text(Field f) const {
    const Json value = Json::parse(required(f));
    if (!value.is_string()) fail(std::string(kFieldNames[f]), "must be a string");
    return value.get<std::string>();
  }

  // payload/metadata: an embedded object, or its text as a string; exactly one.
  std::string object_text(Field object_field, Field text_field) const {
    const std::string name(kFieldNames[object_field]);
    if (spans_[object_field] && spans_[text_field]) {
      fail(name, "is given twice (both '" + name + "' and '" + name + "_text')");
    }
    std::string out;
    if (spans_[object_field]) {
      out = std::string(*spans_[object_field]);
    } else if (spans_[text_field]) {
      out = text(text_field);
    } else {
      fail(name, "is missing");
    }
    try {
      validate_json_object(out, name);
    } catch (const InvalidArgument& e) {
      fail(name, std::string("is invalid: ") + e.what());
    }
    return out;
  }

  EventHash hash() const {
    const std::string hex = text(kHash);
    EventHash h{};
    if (hex.size() != h.size() * 2) fail("hash", "must be 64 hex digits, got " + std::to_string(hex.size()) + " characters");
    auto digit = [&](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      fail("hash", "must be hex digits, found '" + std::string(1, c) + "'");
    };
    for (std::size_t k = 0; k < h.size(); ++k) {
      h[k] = static_cast<std::uint8_t>(digit(hex[2 * k]) * 16 + digit(hex[2 * k + 1]));
    }
    return h;
  }


 private:
  std::string_view line_;
  std::string where_;
  std::array<std::optional<std::string_view>, kFieldCount> spans_{};
};

}  // namespace

namespace detail {

std::string parse_export_header(std::string_view line) {
  const auto fail = [](const std::string& why) {
    return InvalidArgument("line 1 (the export header): " + why);
  };
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (detail::json_text_nested_deeper_than(line, 2)) throw fail("is nested too deeply");
  Json j;
  try {
    j = Json::parse(line);
  } catch (const Json::exception&) {
    throw SerializationError("line 1 (the export header): is not one JSON object");
  }
  if (!j.is_object()) throw fail("is not a JSON object");
  for (const auto& [name, value] : j.items()) {
    if (name != "annals_export" && name != "store_id") throw fail("unknown field '" + name + "'");
  }
  const Json& format = j["annals_export"];
  if (!format.is_number_integer() || format.get<std::int64_t>() != 1) {
    throw fail("field 'annals_export' is " + format.dump() + "; this build reads format 1");
  }
  if (!j.contains("store_id")) throw fail("field 'store_id' is missing");
  const Json& id = j["store_id"];
  if (!id.is_string() || !is_valid_event_id(id.get<std::string>()) ||
      normalize_event_id(id.get<std::string>()) != id.get<std::string>()) {
    throw fail("field 'store_id' must be a UUID in lowercase canonical form, got " + id.dump());
  }
  return id.get<std::string>();
}

bool read_line(std::istream& in, std::string& out, std::size_t max, std::int64_t line_number) {
  out.clear();
  std::streambuf* buf = in.rdbuf();
  if (buf == nullptr) return false;
  bool any = false;
  for (;;) {
    const auto c = buf->sbumpc();
    if (c == std::char_traits<char>::eof()) {
      in.setstate(std::ios_base::eofbit);
      return any;
    }
    any = true;
    if (c == '\n') return true;
    if (out.size() >= max) {
      throw SerializationError(where(line_number) + ": longer than " + std::to_string(max) +
                               " bytes");
    }
    out.push_back(static_cast<char>(c));
  }
}

}  // namespace detail

namespace {

using detail::kExportHeaderStart;
using detail::parse_export_header;
using detail::read_line;

// Whether an event with id `event_id` is stored in `db`.
bool event_id_stored(SQLite::Database& db, const std::string& event_id) {
  SQLite::Statement st(db, "SELECT 1 FROM events WHERE event_id = ?1");
  st.bind(1, event_id);
  return st.executeStep();
}

// Gives the store being imported into (inside the import's transaction) the
// id an export's header carries.
void adopt_store_id(SQLite::Database& db, const std::string& name, const std::string& id) {
  SQLite::Statement current(db, "SELECT store_id FROM store_identity WHERE singleton = 1");
  if (current.executeStep() && current.getColumn(0).getString() == id) return;
  SQLite::Statement seals(db, "SELECT count(*) FROM seals");
  seals.executeStep();
  if (seals.getColumn(0).getInt64() > 0) {
    throw InvalidArgument("store " + name +
                          " has seals of its own store id; the export's header names store " +
                          id + ": import into a store without seals");
  }
  SQLite::Statement update(db, "UPDATE store_identity SET store_id = ?1 WHERE singleton = 1");
  update.bind(1, id);
  update.exec();
}

}  // namespace

std::string to_export_line(const RecordedEvent& event) {
  validate_json_object(event.payload, "payload of the event at position " +
                                          std::to_string(event.position));
  validate_json_object(event.metadata, "metadata of the event at position " +
                                           std::to_string(event.position));
  std::string out;
  out.reserve(256 + event.payload.size() + event.metadata.size());
  out += "{\"position\":" + std::to_string(event.position);
  out += ",\"stream_id\":";
  append_json_string(out, event.stream_id);
  out += ",\"version\":" + std::to_string(event.version);
  out += ",\"event_id\":";
  append_json_string(out, event.event_id);
  out += ",\"type\":";
  append_json_string(out, event.type);
  out += ",\"schema_version\":" + std::to_string(event.schema_version);
  out += ",\"recorded_at\":\"" + format_timestamp(event.recorded_at) + "\"";
  append_object_field(out, "payload", event.payload);
  append_object_field(out, "metadata", event.metadata);
  out += ",\"hash\":\"" + to_hex(event.hash) + "\"}";
  return out;
}

RecordedEvent parse_export_line(std::string_view line, std::int64_t line_number,
                                const ExportLineLimits& limits) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > limits.max_line_bytes) {
    throw SerializationError(where(line_number) + ": longer than " +
                             std::to_string(limits.max_line_bytes) + " bytes");
  }
  if (detail::json_text_nested_deeper_than(line, limits.max_depth)) {
    throw SerializationError(where(line_number) + ": nested deeper than " +
                             std::to_string(limits.max_depth) + " levels");
  }
  try {
    validate_json_object(line, where(line_number));
  } catch (const InvalidArgument& e) {
    throw SerializationError(e.what());
  }
  LineParser p(line, line_number);
  p.scan();
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  RecordedEvent e;
  e.position = p.integer(kPosition, 1, kMax);
  e.stream_id = p.text(kStreamId);
  try {
    validate_stream_id(e.stream_id);
  } catch (const InvalidArgument& ex) {
    p.fail("stream_id", std::string("is invalid: ") + ex.what());
  }
  e.version = p.integer(kVersion, 1, kMax);
  e.event_id = p.text(kEventId);
  if (!is_valid_event_id(e.event_id) || normalize_event_id(e.event_id) != e.event_id) {
    p.fail("event_id", "must be a UUID in lowercase canonical form, got '" + e.event_id + "'");
  }
  e.type = p.text(kType);
  try {
    validate_event_type(e.type);
  } catch (const InvalidArgument& ex) {
    p.fail("type", std::string("is invalid: ") + ex.what());
  }
  e.schema_version =
      static_cast<int>(p.integer(kSchemaVersion, 1, std::numeric_limits<int>::max()));
  const std::string recorded_at = p.text(kRecordedAt);
  try {
    e.recorded_at = parse_timestamp(recorded_at);
  } catch (const InvalidArgument& ex) {
    p.fail("recorded_at", std::string("is invalid: ") + ex.what());
  }
  e.payload = p.object_text(kPayload, kPayloadText);
  e.metadata = p.object_text(kMetadata, kMetadataText);
  e.hash = p.hash();
  return e;
}

std::int64_t export_events(const EventStore& store, std::ostream& out,
                           const ExportProgress& progress) {
  const std::int64_t head = store.head_position();
  std::int64_t done = 0;
  std::string line;
  if (const std::string id = store.store_id(); !id.empty()) {
    line = std::string(kExportHeaderStart) + "1,\"store_id\":" + Json(id).dump() + "}\n";
    out.write(line.data(), static_cast<std::streamsize>(line.size()));
    if (!out) throw StorageError("cannot write the export: the output failed at its header");
  }
  for (const RecordedEvent& e : store.read_all(1, {}, static_cast<std::uint64_t>(head))) {
    line = to_export_line(e);
    line.push_back('\n');
    out.write(line.data(), static_cast<std::streamsize>(line.size()));
    if (!out) {
      throw StorageError("cannot write the export: the output failed after " +
                         std::to_string(done) + " events");
    }
    ++done;
    if (progress && (done % 1024 == 0 || done == head)) progress(done, head);
  }
  out.flush();
  if (!out) throw StorageError("cannot write the export: flushing the output failed");
  return done;
}

std::int64_t import_events(const std::filesystem::path& store_file, std::istream& in,
                           const ImportOptions& options) {
  {
    // Creates or migrates the schema; refuses what is not a store.
    SqliteStoreOptions store_options;
    store_options.create_if_missing = options.create_if_missing;
    store_options.busy_timeout = options.busy_timeout;
    SqliteEventStore check(store_file, store_options);
  }
  const std::string name = "'" + store_file.string() + "'";
  std::optional<SQLite::Database> db;
  try {
    db.emplace(store_file.string(), SQLite::OPEN_READWRITE,
               static_cast<int>(options.busy_timeout.count()));
    db->exec("PRAGMA synchronous = FULL");
    detail::retry_while_busy(options.busy_timeout, [&] { db->exec("BEGIN IMMEDIATE"); });
  } catch (const SQLite::Exception& e) {
    throw detail::storage_error(e, "opening " + name + " for an import");
  }
  std::int64_t imported = 0;
  std::int64_t line_number = 0;
  try {
    {
      // The high-water mark counts too: a store whose events were all deleted
      // has handed out positions that an import must not hand out again.
      SQLite::Statement head(*db,
                             "SELECT coalesce(max(position), 0), "
                             "(SELECT coalesce(max(position), 0) FROM events_high_water) "
                             "FROM events");
      head.executeStep();
      const std::int64_t stored = head.getColumn(0).getInt64();
      const std::int64_t handed_out = head.getColumn(1).getInt64();
      if (stored != 0) {
        throw InvalidArgument("store " + name + " is not empty (head position " +
                              std::to_string(stored) + "): import needs an empty store");
      }
      if (handed_out != 0) {
        throw InvalidArgument("store " + name + " has no events, but positions up to " +
                              std::to_string(handed_out) +
                              " were handed out (its events were deleted): import needs a "
                              "store that never held any");
      }
    }
    SQLite::Statement version_of(
        *db, "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ?1");
    SQLite::Statement insert(*db, detail::kInsertEventSql);
    EventHash previous{};
    std::string line;
    while (read_line(in, line, options.limits.max_line_bytes, line_number + 1)) {
      ++line_number;
      if (line_number == 1 && std::string_view(line).starts_with(kExportHeaderStart)) {
        adopt_store_id(*db, name, parse_export_header(line));
        continue;
      }
      const RecordedEvent e = parse_export_line(line, line_number, options.limits);
      const std::string at = where(line_number);
      if (e.position != imported + 1) {
        throw InvalidArgument(at + ": field 'position' is " + std::to_string(e.position) +
                              ", expected " + std::to_string(imported + 1) +
                              " (an export lists positions 1, 2, 3, ... in order)");
      }
      version_of.reset();
      version_of.bind(1, e.stream_id);
      version_of.executeStep();
      const std::int64_t stream_version = version_of.getColumn(0).getInt64();
      if (e.version != stream_version + 1) {
        throw InvalidArgument(at + ": field 'version' is " + std::to_string(e.version) +
                              ", expected " + std::to_string(stream_version + 1) +
                              " for stream '" + e.stream_id + "'");
      }
      const EventHash computed = chain_hash(previous, e);
      if (computed != e.hash) {
        throw IntegrityError(at + ": the hash of the event at position " +
                                 std::to_string(e.position) + " does not match: exported " +
                                 to_hex(e.hash) + ", computed " + to_hex(computed),
                             e.position);
      }
      insert.reset();
      detail::bind_event(insert, e);
      try {
        insert.exec();
      } catch (const SQLite::Exception& ex) {
        insert.tryReset();
        // A taken key (the INSERT trigger, or a UNIQUE index): the table, not
        // the message, tells whether it is the event id.
        const int code = ex.getExtendedErrorCode();
        const bool taken = code == SQLITE_CONSTRAINT_TRIGGER || code == SQLITE_CONSTRAINT_UNIQUE;
        if (taken && event_id_stored(*db, e.event_id)) {
          throw InvalidArgument(at + ": field 'event_id' " + e.event_id +
                                " is already used by an earlier line");
        }
        throw;
      }
      previous = e.hash;
      ++imported;
      if (options.progress && imported % 1024 == 0) options.progress(imported, 0);
    }
    if (in.bad()) throw StorageError("cannot read the import input after line " + std::to_string(line_number));
    if (imported > 0) {
      SQLite::Statement mark(*db, detail::kRaiseHighWaterSql);
      mark.bind(1, imported);
      mark.exec();
    }
    db->exec("COMMIT");
  } catch (...) {
    try {
      db->exec("ROLLBACK");
    } catch (...) {  // the first error is the one to report
    }
    try {
      throw;
    } catch (const SQLite::Exception& e) {
      throw detail::storage_error(
          e, "importing into " + name + (line_number > 0 ? " at " + where(line_number) : ""));
    }
  }
  if (options.progress) options.progress(imported, 0);
  return imported;
}

}  // namespace annals
