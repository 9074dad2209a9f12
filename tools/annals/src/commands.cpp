#include "commands.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <thread>
#include <vector>

#include "annals/core/error.hpp"
#include "annals/core/event_hash.hpp"
#include "annals/core/stream_id.hpp"
#include "annals/projections/rebuild_request.hpp"
#include "annals/projections/sqlite_read_model.hpp"
#include "annals/store/event_export.hpp"
#include "progress.hpp"

namespace annals::tool {

namespace {

using Clock = std::chrono::steady_clock;

// "'file'", built by appending: `"'" + std::string` trips a false
// -Wrestrict of GCC 12 at -O2 (GCC bug 105329).
std::string named(const std::filesystem::path& p) {
  std::string text(1, '\'');
  text += p.string();
  text += '\'';
  return text;
}

// Human form of one event: position, stream@version, time, type, payload.
void print_event(std::ostream& out, const RecordedEvent& e, bool json) {
  if (json) {
    out << to_export_line(e) << '\n';
    return;
  }
  std::string payload = e.payload;
  try {
    payload = Json::parse(e.payload).dump();  // one line, whatever the stored layout
  } catch (const Json::exception&) {
  }
  out << e.position << '\t' << printable(e.stream_id) << '@' << e.version << '\t'
      << format_timestamp(e.recorded_at) << '\t' << printable(e.type) << '\t'
      << printable(payload) << '\n';
}

// An immutable URI of `file`: every byte but unreserved ones and '/' is
// percent-encoded, so '?', '#' and '%' in a file name stay part of it.
std::string immutable_uri(const std::filesystem::path& file) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string uri = "file:";
  for (const char ch : std::filesystem::absolute(file).string()) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '/' || c == '-' || c == '.' || c == '_' || c == '~') {
      uri += ch;
    } else {
      uri += {'%', kHex[c >> 4], kHex[c & 0xf]};
    }
  }
  return uri + "?immutable=1";
}

// A read-only SQLite connection for the aggregate queries the store API has
// no call for (stats, projections). As SqliteStoreOptions::read_only does, a
// WAL store whose -shm file cannot be created (a directory this user may not
// write) and that has no -wal file is read as immutable.
SQLite::Database open_raw(const std::filesystem::path& file) {
  try {
    SQLite::Database db(file.string(), SQLite::OPEN_READONLY, 5'000);
    try {
      db.execAndGet("PRAGMA schema_version");
      return db;
    } catch (const SQLite::Exception& e) {
      const int primary = e.getErrorCode() & 0xff;
      std::error_code ec;
      const auto wal = file.string() + "-wal";
      const bool no_log = !std::filesystem::exists(wal, ec) || std::filesystem::file_size(wal, ec) == 0;
      // Other errors (not a database, ...) are reported by the first query.
      if ((primary != SQLITE_READONLY && primary != SQLITE_CANTOPEN) || !no_log) return db;
    }
    return SQLite::Database(immutable_uri(file), SQLite::OPEN_READONLY | SQLite::OPEN_URI, 5'000);
  } catch (const SQLite::Exception& e) {
    throw ToolError(kExitUnusable, "cannot open " + named(file) + ": " + e.what());
  }
}

std::uintmax_t size_or_zero(const std::filesystem::path& p) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(p, ec);
  return ec ? 0 : size;
}

// Runs `sql` and calls `row` for every result row; SQLite errors name the file.
template <class Fn>
void each_row(SQLite::Database& db, const std::string& sql, const std::filesystem::path& file,
              Fn&& row) {
  try {
    SQLite::Statement st(db, sql);
    while (st.executeStep()) row(st);
  } catch (const SQLite::Exception& e) {
    // A file that is not a database at all is unusable, not a failed query.
    const bool not_a_database = e.getErrorCode() == SQLITE_NOTADB;
    throw ToolError(not_a_database ? kExitUnusable : kExitFailure,
                    "reading " + named(file) + ": " + e.what());
  }
}

// The checkpoint table of a read model, as the `projections` and `rebuild`
// commands see it.
struct CheckpointRow {
  std::string name;
  std::int64_t position = 0;
  std::string state;
  std::optional<std::string> error;
  std::int64_t error_position = 0;
  std::int64_t attempts = 0;
  std::int64_t updated_at = 0;
  bool rebuild_requested = false;
};

std::filesystem::path read_model_path(const std::filesystem::path& db,
                                      const std::filesystem::path& read_model) {
  const auto path = read_model.empty() ? db : read_model;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw ToolError(kExitUnusable, "read model file " + named(path) + " does not exist");
  }
  return path;
}

// Every checkpoint row, in name order; none when the file has no such table.
std::vector<CheckpointRow> load_checkpoints(const std::filesystem::path& file) {
  SQLite::Database db = open_raw(file);
  bool has_table = false;
  bool has_request = false;
  each_row(db,
           "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND "
           "name = 'projection_checkpoints'",
           file, [&](SQLite::Statement& st) { has_table = st.getColumn(0).getInt() > 0; });
  std::vector<CheckpointRow> rows;
  if (!has_table) return rows;
  each_row(db,
           "SELECT count(*) FROM pragma_table_info('projection_checkpoints') "
           "WHERE name = 'rebuild_requested'",
           file, [&](SQLite::Statement& st) { has_request = st.getColumn(0).getInt() > 0; });
  const std::string sql =
      std::string("SELECT name, position, state, error, error_position, attempts, updated_at, ") +
      (has_request ? "rebuild_requested IS NOT NULL" : "0") +
      " FROM projection_checkpoints ORDER BY name";
  each_row(db, sql, file, [&](SQLite::Statement& st) {
    CheckpointRow r;
    r.name = st.getColumn(0).getString();
    r.position = st.getColumn(1).getInt64();
    r.state = st.getColumn(2).getString();
    if (!st.getColumn(3).isNull()) r.error = st.getColumn(3).getString();
    r.error_position = st.getColumn(4).getInt64();
    r.attempts = st.getColumn(5).getInt64();
    r.updated_at = st.getColumn(6).getInt64();
    r.rebuild_requested = st.getColumn(7).getInt() != 0;
    rows.push_back(std::move(r));
  });
  return rows;
}

}  // namespace

// ---- streams ---------------------------------------------------------------------

int run_streams(const StreamsCommand& c, Io& io) {
  const auto store = open_for_reading(c.db);
  for (const std::string& id : store->list_streams(c.prefix)) {
    const std::int64_t version = store->stream_version(id);
    if (c.json) {
      io.out << Json{{"stream_id", id}, {"version", version}}.dump() << '\n';
    } else {
      io.out << printable(id) << '\t' << version << '\n';
    }
  }
  return kExitOk;
}

// ---- read ------------------------------------------------------------------------

namespace {

// Refuses an empty --correlation (no event carries an empty correlation id).
void check_correlation(const std::optional<std::string>& correlation) {
  if (correlation && correlation->empty()) {
    throw ToolError(kExitUsage, "--correlation needs a non-empty id");
  }
}

// Does `e` pass --correlation (when given)?
bool correlated(const RecordedEvent& e, const std::optional<std::string>& correlation) {
  return !correlation || e.correlation_id() == *correlation;
}

}  // namespace

int run_read(const ReadCommand& c, Io& io) {
  try {
    validate_stream_id(c.stream);
  } catch (const InvalidArgument& e) {
    throw ToolError(kExitUsage, e.what());
  }
  check_correlation(c.correlation);
  const auto store = open_for_reading(c.db);
  if (store->stream_version(c.stream) == 0) {
    throw ToolError(kExitFailure,
                    "stream '" + c.stream + "' does not exist in " + named(c.db));
  }
  const Direction direction = c.backward ? Direction::backward : Direction::forward;
  const std::int64_t from = c.from.value_or(c.backward ? kStreamEnd : 1);
  if (from < (c.backward ? 0 : 1)) {
    throw ToolError(kExitUsage, "--from " + std::to_string(from) + ": versions start at 1");
  }
  // With --correlation the limit counts the events printed, not those read.
  std::uint64_t printed = 0;
  for (const RecordedEvent& e :
       store->read_stream(c.stream, from, direction, c.correlation ? kNoLimit : c.limit)) {
    if (printed >= c.limit) break;
    if (!correlated(e, c.correlation)) continue;
    print_event(io.out, e, c.json);
    ++printed;
  }
  return kExitOk;
}

// ---- tail ------------------------------------------------------------------------

int run_tail(const TailCommand& c, Io& io) {
  if (c.from && *c.from < 1) throw ToolError(kExitUsage, "--from: positions start at 1");
  if (c.poll_ms < 1) throw ToolError(kExitUsage, "--poll-interval must be at least 1 ms");
  check_correlation(c.correlation);
  const auto store = open_for_reading(c.db);
  std::int64_t next = 1;
  if (c.from) {
    next = *c.from;
  } else if (!c.correlation) {
    next = std::max<std::int64_t>(1, store->head_position() - 9);
  } else {
    // The positions of the last 10 correlated events, kept in a ring.
    std::array<std::int64_t, 10> last{};
    std::size_t seen = 0;
    std::int64_t end = 0;
    for (const RecordedEvent& e : store->read_all(1)) {
      end = e.position;
      if (correlated(e, c.correlation)) last[seen++ % last.size()] = e.position;
    }
    next = seen == 0 ? end + 1 : last[seen < last.size() ? 0 : seen % last.size()];
  }
  std::int64_t printed = 0;
  const auto limit_reached = [&] { return c.max_events && printed >= *c.max_events; };
  const auto print_new = [&] {
    for (const RecordedEvent& e : store->read_all(next)) {
      if (limit_reached()) break;
      next = e.position + 1;
      if (!correlated(e, c.correlation)) continue;
      print_event(io.out, e, c.json);
      ++printed;
    }
    io.out.flush();
  };
  print_new();
  if (!c.follow) return kExitOk;
  const auto started = Clock::now();
  const auto poll = std::chrono::milliseconds(c.poll_ms);
  while (!limit_reached()) {
    if (c.timeout_seconds > 0 &&
        Clock::now() - started >= std::chrono::duration<double>(c.timeout_seconds)) {
      break;
    }
    std::this_thread::sleep_for(poll);
    // One indexed query per poll; the events are read only when there are some.
    if (store->head_position() >= next) print_new();
    if (!io.out) throw ToolError(kExitFailure, "cannot write the output");
  }
  return kExitOk;
}

// ---- stats -----------------------------------------------------------------------

int run_stats(const StatsCommand& c, Io& io) {
  const auto store = open_for_reading(c.db);
  const std::int64_t head = store->head_position();
  SQLite::Database db = open_raw(c.db);
  std::int64_t events = 0, streams = 0, first_at = 0, last_at = 0;
  each_row(db,
           "SELECT count(*), coalesce(min(recorded_at), 0), coalesce(max(recorded_at), 0), "
           "(SELECT count(*) FROM (SELECT DISTINCT stream_id FROM events)) FROM events",
           c.db, [&](SQLite::Statement& st) {
             events = st.getColumn(0).getInt64();
             first_at = st.getColumn(1).getInt64();
             last_at = st.getColumn(2).getInt64();
             streams = st.getColumn(3).getInt64();
           });
  std::vector<std::pair<std::string, std::int64_t>> by_type, by_category;
  each_row(db, "SELECT type, count(*) FROM events GROUP BY type ORDER BY type", c.db,
           [&](SQLite::Statement& st) {
             by_type.emplace_back(st.getColumn(0).getString(), st.getColumn(1).getInt64());
           });
  // The category is the text before the first '-' (annals/core/stream_id.hpp).
  each_row(db,
           "SELECT CASE WHEN instr(stream_id, '-') > 0 "
           "THEN substr(stream_id, 1, instr(stream_id, '-') - 1) ELSE stream_id END AS category, "
           "count(*) FROM events GROUP BY category ORDER BY category",
           c.db, [&](SQLite::Statement& st) {
             by_category.emplace_back(st.getColumn(0).getString(), st.getColumn(1).getInt64());
           });
  const auto file_size = size_or_zero(c.db);
  const auto wal_size = size_or_zero(c.db.string() + "-wal");
  if (c.json) {
    Json j;
    j["file"] = c.db.string();
    j["file_bytes"] = file_size;
    j["wal_bytes"] = wal_size;
    j["events"] = events;
    j["streams"] = streams;
    j["head_position"] = head;
    j["first_recorded_at"] = events > 0 ? Json(format_timestamp(from_micros(first_at))) : Json();
    j["last_recorded_at"] = events > 0 ? Json(format_timestamp(from_micros(last_at))) : Json();
    j["types"] = Json::object();
    for (const auto& [type, n] : by_type) j["types"][type] = n;
    j["categories"] = Json::object();
    for (const auto& [category, n] : by_category) j["categories"][category] = n;
    io.out << j.dump() << '\n';
    return kExitOk;
  }
  io.out << "file           " << printable(c.db.string()) << " (" << file_size << " bytes, WAL " << wal_size
         << " bytes)\n"
         << "events         " << events << '\n'
         << "streams        " << streams << '\n'
         << "head position  " << head << '\n';
  if (events > 0) {
    io.out << "first event    " << format_timestamp(from_micros(first_at)) << '\n'
           << "last event     " << format_timestamp(from_micros(last_at)) << '\n';
  }
  io.out << "events per type:\n";
  for (const auto& [type, n] : by_type) io.out << "  " << printable(type) << '\t' << n << '\n';
  io.out << "events per category:\n";
  for (const auto& [category, n] : by_category) {
    io.out << "  " << printable(category) << '\t' << n << '\n';
  }
  return kExitOk;
}

// ---- verify ----------------------------------------------------------------------

int run_verify(const VerifyCommand& c, Io& io) {
  if (!c.seal.empty()) return run_verify_seal(c, io);
  const auto store = open_for_reading(c.db);
  const std::int64_t head = store->head_position();
  ProgressBar bar(io.err, io.err_is_terminal, "verify", head);
  ChainVerifier verifier;
  for (const RecordedEvent& e : store->read_all(1, {}, static_cast<std::uint64_t>(head))) {
    if (!verifier.feed(e)) break;
    if (verifier.checked() % 256 == 0) bar.update(verifier.checked());
  }
  bar.finish();
  // What the chain cannot show: a deleted tail (head below the high-water
  // mark) and append-only guards that are missing or altered.
  const VerifyResult guards = store->verify_guards();
  const bool ok = verifier.ok() && guards.ok;
  std::int64_t first_bad = verifier.ok() ? guards.first_bad_position : verifier.failed_at();
  std::string reason = verifier.ok() ? guards.reason : verifier.reason();
  if (!verifier.ok() && !guards.ok) reason += "; " + guards.reason;
  if (c.json) {
    Json j{{"ok", ok}, {"events_checked", verifier.checked()}};
    if (!ok) {
      j["first_bad_position"] = first_bad;
      j["reason"] = reason;
    }
    io.out << j.dump() << '\n';
  } else if (ok) {
    io.out << "ok: " << verifier.checked() << " events, hash chain intact\n";
  }
  if (!ok) {
    throw ToolError(kExitIntegrity,
                    named(c.db) + ": " +
                        (first_bad > 0 ? "first bad position " + std::to_string(first_bad) + ": "
                                       : std::string()) +
                        reason);
  }
  return kExitOk;
}

// ---- export ----------------------------------------------------------------------

int run_export(const ExportCommand& c, Io& io) {
  const auto store = open_for_reading(c.db);
  const std::int64_t head = store->head_position();
  ProgressBar bar(io.err, io.err_is_terminal, "export", head);
  const auto progress = [&](std::int64_t done, std::int64_t total) { bar.update(done, total); };
  if (c.output.empty() || c.output == "-") {
    export_events(*store, io.out, progress);
    return kExitOk;
  }
  // Written beside the target and renamed when complete: a failed export never
  // leaves a truncated file under the wanted name.
  const std::filesystem::path target = c.output;
  const std::filesystem::path temp =
      target.string() + ".tmp-" + std::to_string(static_cast<long>(::getpid()));
  try {
    {
      // Mode 0600, as the store's own file: an export holds every event. A
      // new file only (O_EXCL), so no existing file or link is followed.
      const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0) {
        throw ToolError(kExitFailure, "cannot create the output file " + named(temp) + ": " +
                                          std::strerror(errno));
      }
      ::close(fd);
      std::ofstream out(temp, std::ios::binary | std::ios::trunc);
      if (!out) throw ToolError(kExitFailure, "cannot create the output file " + named(temp));
      export_events(*store, out, progress);
      out.close();
      if (!out) throw ToolError(kExitFailure, "cannot write the output file " + named(temp));
    }
    std::error_code ec;
    std::filesystem::rename(temp, target, ec);
    if (ec) {
      throw ToolError(kExitFailure, "cannot rename " + named(temp) + " to " + named(target) +
                                        ": " + ec.message());
    }
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    throw;
  }
  return kExitOk;
}

// ---- import ----------------------------------------------------------------------

int run_import(const ImportCommand& c, Io& io) {
  std::error_code ec;
  const bool existed = std::filesystem::exists(c.db, ec);
  const bool was_empty = existed && std::filesystem::file_size(c.db, ec) == 0 && !ec;
  // Companion files this command may create, so a failure removes only those.
  std::vector<std::string> created_companions;
  for (const char* suffix : {"-wal", "-shm", "-journal"}) {
    if (!std::filesystem::exists(c.db.string() + suffix, ec)) {
      created_companions.push_back(c.db.string() + suffix);
    }
  }
  if (existed && !was_empty) {
    open_for_reading(c.db);  // refuses what is not a store, untouched
    require_writable(c.db, "store file");
  }
  std::ifstream file;
  std::istream* in = &io.in;
  if (c.input != "-") {
    file.open(c.input, std::ios::binary);
    if (!file) throw ToolError(kExitFailure, "cannot open the input file " + named(c.input));
    in = &file;
  }
  ProgressBar bar(io.err, io.err_is_terminal, "import");
  ImportOptions options;
  options.progress = [&](std::int64_t done, std::int64_t) { bar.update(done); };
  try {
    const std::int64_t n = import_events(c.db, *in, options);
    bar.finish();
    io.err << "imported " << n << " events into " << named(c.db) << '\n';
  } catch (...) {
    bar.finish();
    if (!existed) {  // ours: leave nothing behind
      for (const char* suffix : {"", "-wal", "-shm"}) {
        std::filesystem::remove(c.db.string() + suffix, ec);
      }
    } else if (was_empty) {  // an empty file given to fill: empty again, as it was
      std::filesystem::resize_file(c.db, 0, ec);
      for (const auto& companion : created_companions) std::filesystem::remove(companion, ec);
    }
    throw;
  }
  return kExitOk;
}

// ---- projections -----------------------------------------------------------------

// A checkpoint beyond the head has no lag: the store lost its newest events
// (or the read model belongs to another store), and a runner going on would
// skip the events appended at those positions later. Such rows are listed
// with their positions and make the command exit with kExitIntegrity.
int run_projections(const ProjectionsCommand& c, Io& io) {
  const auto store = open_for_reading(c.db);
  const auto file = read_model_path(c.db, c.read_model);
  const auto rows = load_checkpoints(file);  // before the head: a live runner may move on
  const std::int64_t head = store->head_position();
  std::vector<std::string> beyond_head;
  for (const CheckpointRow& r : rows) {
    const bool beyond = r.position > head;
    if (beyond) {
      beyond_head.push_back("projection '" + r.name + "' at position " +
                            std::to_string(r.position));
    }
    const Json lag = beyond ? Json() : Json(head - r.position);
    if (c.json) {
      Json j{{"name", r.name},       {"checkpoint", r.position}, {"head_position", head},
             {"lag", lag},           {"state", r.state},
             {"updated_at", format_timestamp(from_micros(r.updated_at))},
             {"rebuild_requested", r.rebuild_requested},
             {"checkpoint_beyond_head", beyond}};
      j["failure"] = r.error ? Json{{"position", r.error_position},
                                    {"attempts", r.attempts},
                                    {"message", *r.error}}
                             : Json();
      io.out << j.dump() << '\n';
      continue;
    }
    io.out << printable(r.name) << "\tcheckpoint " << r.position << "\thead " << head;
    if (beyond) {
      io.out << "\tcheckpoint beyond the head";
    } else {
      io.out << "\tlag " << head - r.position;
    }
    io.out << '\t' << printable(r.state);
    if (r.error) {
      io.out << "\tfailed at position " << r.error_position << " after " << r.attempts
             << " attempts: " << printable(*r.error);
    }
    if (r.rebuild_requested) io.out << "\trebuild requested";
    io.out << '\n';
  }
  if (!beyond_head.empty()) {
    std::string names;
    for (const auto& n : beyond_head) names += (names.empty() ? "" : ", ") + n;
    throw ToolError(kExitIntegrity,
                    named(file) + ": checkpoint beyond the store's head (position " +
                        std::to_string(head) + " in " + named(c.db) + "): " + names +
                        "; events were removed from the store's tail, or the read model "
                        "belongs to another store (check the store with annals verify, then "
                        "rebuild the projection)");
  }
  return kExitOk;
}

// ---- rebuild ---------------------------------------------------------------------

int run_rebuild(const RebuildCommand& c, Io& io) {
  if (c.poll_ms < 1) throw ToolError(kExitUsage, "--poll-interval must be at least 1 ms");
  const auto store = open_for_reading(c.db);
  const auto file = read_model_path(c.db, c.read_model);
  const auto rows = load_checkpoints(file);
  if (std::none_of(rows.begin(), rows.end(),
                   [&](const CheckpointRow& r) { return r.name == c.name; })) {
    std::string known;
    for (const auto& r : rows) known += (known.empty() ? "" : ", ") + r.name;
    throw ToolError(kExitFailure, "no projection named '" + c.name + "' in " + named(file) +
                                      (known.empty() ? " (it has none)" : " (it has: " + known + ")"));
  }
  require_writable(file, "read model file");
  {
    SqliteReadModelOptions options;
    options.create_if_missing = false;
    std::unique_ptr<SqliteReadModel> model;
    try {
      model = std::make_unique<SqliteReadModel>(file, options);
    } catch (const StorageError& e) {
      throw ToolError(kExitUnusable, e.what());
    }
    request_rebuild(*model, c.name);
  }
  io.err << "rebuild of '" << c.name << "' requested in " << named(file) << '\n';
  if (!c.wait) return kExitOk;

  // A checkpoint row whose state is "stopped" was left by a runner that
  // stopped: nobody is running the projection, so nothing would ever honour
  // the request while we wait. Say so instead of waiting forever.
  for (const auto& r : rows) {
    if (r.name == c.name && r.state == "stopped") {
      throw ToolError(kExitFailure,
                      "not waiting: no runner of '" + printable(c.name) +
                          "' is running (its state is \"stopped\"); the rebuild is recorded and "
                          "runs when a program next runs the projection (the bank example runs "
                          "its projections at every bank command)");
    }
  }
  const std::int64_t head = store->head_position();
  ProgressBar bar(io.err, io.err_is_terminal, "rebuild " + c.name, head);
  const auto started = Clock::now();
  for (;;) {
    std::optional<CheckpointRow> row;
    for (auto& r : load_checkpoints(file)) {
      if (r.name == c.name) row = std::move(r);
    }
    if (!row) throw ToolError(kExitFailure, "projection '" + c.name + "' disappeared from " + named(file));
    if (!row->rebuild_requested) {
      if (row->error) {
        throw ToolError(kExitFailure, "the rebuild of '" + c.name + "' stopped at position " +
                                          std::to_string(row->error_position) + ": " + *row->error);
      }
      bar.update(row->position);
      if (row->position >= head) break;
    }
    if (c.timeout_seconds > 0 &&
        Clock::now() - started >= std::chrono::duration<double>(c.timeout_seconds)) {
      throw ToolError(kExitFailure,
                      "timed out waiting for the rebuild of '" + c.name + "' (" +
                          (row->rebuild_requested
                               ? std::string("the request is still pending: is a runner of it "
                                             "running?")
                               : "checkpoint " + std::to_string(row->position) + " of " +
                                     std::to_string(head)) +
                          ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(c.poll_ms));
  }
  bar.finish();
  io.err << "rebuild of '" << c.name << "' done: checkpoint reached " << head << '\n';
  return kExitOk;
}

}  // namespace annals::tool
