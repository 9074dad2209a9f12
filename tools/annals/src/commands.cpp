#include "commands.hpp"

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
#include <optional>
#include <thread>
#include <vector>

#include "annals/core/error.hpp"
#include "annals/core/event_hash.hpp"
#include "annals/core/stream_id.hpp"
#include "annals/projections/rebuild_request.hpp"
#include "annals/projections/sqlite_read_model.hpp"
#include "annals/store/commit_watcher.hpp"
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
std::uintmax_t size_or_zero(const std::filesystem::path& p) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(p, ec);
  return ec ? 0 : size;
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

// Every checkpoint row, in name order; none when the read model has no such
// table.
std::vector<CheckpointRow> load_checkpoints(const CommandReadModel& model) {
  const std::vector<CheckpointRecord> records = checkpoint_records_in(model);
  std::vector<CheckpointRow> rows;
  rows.reserve(records.size());
  for (const CheckpointRecord& record : records) {
    CheckpointRow r;
    r.name = record.name;
    r.position = record.position;
    r.state = std::string(to_string(record.state));
    if (record.failure) {
      r.error = record.failure->message;
      r.error_position = record.failure->position;
      r.attempts = record.failure->attempts;
    }
    r.updated_at = to_micros(record.updated_at);
    r.rebuild_requested = record.rebuild_requested;
    rows.push_back(std::move(r));
  }
  return rows;
}

}  // namespace

// ---- read models -------------------------------------------------------------------

std::vector<CheckpointRecord> read_checkpoint_records(const std::filesystem::path& file) {
  // A file that cannot be opened, or is not a database at all, is unusable;
  // a failed query on one that opened is a failure.
  std::optional<SqliteReadModel> read_model;
  try {
    read_model.emplace(file, SqliteReadModelOptions{.read_only = true});
  } catch (const StorageError& e) {
    throw ToolError(kExitUnusable, "cannot open " + named(file) + ": " + e.what());
  }
  try {
    return read_model->checkpoint_records();
  } catch (const StorageError& e) {
    throw ToolError((e.code() & 0xff) == SQLITE_NOTADB ? kExitUnusable : kExitFailure,
                    "reading " + named(file) + ": " + e.what());
  }
}

CommandReadModel find_read_model(const std::filesystem::path& db,
                                 const std::filesystem::path& read_model) {
  CommandReadModel model;
  if (!is_postgres_read_model(db, read_model)) {
    model.location = read_model_path(db, read_model);
    model.name = named(model.location);
    return model;
  }
  model.location = read_model.empty() ? db : read_model;
  model.name = postgres_read_model_name(model.location);
  model.looking = open_postgres_read_model(model.location, true);
  return model;
}

std::vector<CheckpointRecord> checkpoint_records_in(const CommandReadModel& model) {
  if (!model.looking) return read_checkpoint_records(model.location);
  try {
    return model.looking->checkpoint_records();
  } catch (const StorageError& e) {
    throw ToolError(kExitFailure, "reading " + model.name + ": " + e.what());
  }
}

std::unique_ptr<ReadModel> open_for_requests(const CommandReadModel& model) {
  if (model.looking) return open_postgres_read_model(model.location, false);
  require_writable(model.location, "read model file");
  SqliteReadModelOptions options;
  options.create_if_missing = false;
  try {
    return std::make_unique<SqliteReadModel>(model.location, options);
  } catch (const StorageError& e) {
    throw ToolError(kExitUnusable, e.what());
  }
}

// ---- streams ---------------------------------------------------------------------

int run_streams(const StreamsCommand& c, Io& io) {
  const auto store = open_store(c.db);
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
  const auto store = open_store(c.db);
  if (store->stream_version(c.stream) == 0) {
    throw ToolError(kExitFailure,
                    "stream '" + c.stream + "' does not exist in " + store_name(c.db));
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
  const auto store = open_store(c.db);
  // Watching before the first look at the head: a commit in between is not
  // missed. Commits of any process wake it; --poll-interval is the longest
  // sleep, and the only wake-up where pushes do not work (the store's
  // CommitWatcher: inotify on SQLite, LISTEN/NOTIFY on PostgreSQL).
  std::unique_ptr<CommitWatcher> watcher;
  if (c.follow) watcher = store->watch_commits();
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
    auto sleep = poll;
    if (c.timeout_seconds > 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::duration<double>(c.timeout_seconds) - (Clock::now() - started));
      sleep = std::clamp(left, std::chrono::milliseconds(1), poll);
    }
    if (watcher) {
      watcher->wait(sleep);
    } else {
      std::this_thread::sleep_for(sleep);
    }
    // One indexed query per wake-up; the events are read only when there are some.
    if (store->head_position() >= next) print_new();
    if (!io.out) throw ToolError(kExitFailure, "cannot write the output");
  }
  return kExitOk;
}

// ---- stats -----------------------------------------------------------------------

int run_stats(const StatsCommand& c, Io& io) {
  const auto store = open_store(c.db);
  const StoreStats stats = store->stats();
  const bool postgres = is_postgres_url(c.db);
  const auto file_size = postgres ? 0 : size_or_zero(c.db);
  const auto wal_size = postgres ? 0 : size_or_zero(c.db.string() + "-wal");
  if (c.json) {
    Json j;
    if (postgres) {
      const std::string name = store_name(c.db);
      j["store"] = name.substr(1, name.size() - 2);  // without its quotes, nor a password
      j["backend"] = "postgresql";
    } else {
      j["file"] = c.db.string();
      j["file_bytes"] = file_size;
      j["wal_bytes"] = wal_size;
    }
    j["events"] = stats.events;
    j["streams"] = stats.streams;
    j["head_position"] = stats.head_position;
    const auto time = [](const std::optional<Timestamp>& t) {
      return t ? Json(format_timestamp(*t)) : Json();
    };
    j["first_recorded_at"] = time(stats.first_recorded_at);
    j["last_recorded_at"] = time(stats.last_recorded_at);
    j["types"] = Json::object();
    for (const auto& [type, n] : stats.types) j["types"][type] = n;
    j["categories"] = Json::object();
    for (const auto& [category, n] : stats.categories) j["categories"][category] = n;
    io.out << j.dump() << '\n';
    return kExitOk;
  }
  if (postgres) {
    io.out << "store          " << printable(store_name(c.db)) << " (PostgreSQL)\n";
  } else {
    io.out << "file           " << printable(c.db.string()) << " (" << file_size << " bytes, WAL "
           << wal_size << " bytes)\n";
  }
  io.out << "events         " << stats.events << '\n'
         << "streams        " << stats.streams << '\n'
         << "head position  " << stats.head_position << '\n';
  if (stats.first_recorded_at && stats.last_recorded_at) {
    io.out << "first event    " << format_timestamp(*stats.first_recorded_at) << '\n'
           << "last event     " << format_timestamp(*stats.last_recorded_at) << '\n';
  }
  io.out << "events per type:\n";
  for (const auto& [type, n] : stats.types) io.out << "  " << printable(type) << '\t' << n << '\n';
  io.out << "events per category:\n";
  for (const auto& [category, n] : stats.categories) {
    io.out << "  " << printable(category) << '\t' << n << '\n';
  }
  return kExitOk;
}

// ---- verify ----------------------------------------------------------------------

int run_verify(const VerifyCommand& c, Io& io) {
  if (!c.seal.empty()) return run_verify_seal(c, io);
  const auto store = open_store(c.db);
  ProgressBar bar(io.err, io.err_is_terminal, "verify", store->head_position());
  // The chain, then what it cannot show: a deleted tail (head below the
  // high-water mark) and append-only guards that are missing or altered.
  const VerifyResult result = store->verify(
      [&](std::int64_t checked, std::int64_t total) { bar.update(checked, total); });
  bar.finish();
  const bool ok = result.ok;
  const std::int64_t first_bad = result.first_bad_position;
  const std::string& reason = result.reason;
  if (c.json) {
    Json j{{"ok", ok}, {"events_checked", result.events_checked}};
    if (!ok) {
      j["first_bad_position"] = first_bad;
      j["reason"] = reason;
    }
    io.out << j.dump() << '\n';
  } else if (ok) {
    io.out << "ok: " << result.events_checked << " events, hash chain intact\n";
  }
  if (!ok) {
    throw ToolError(kExitIntegrity,
                    store_name(c.db) + ": " +
                        (first_bad > 0 ? "first bad position " + std::to_string(first_bad) + ": "
                                       : std::string()) +
                        reason);
  }
  return kExitOk;
}

// ---- export ----------------------------------------------------------------------

int run_export(const ExportCommand& c, Io& io) {
  const auto store = open_store(c.db);
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

namespace {

// The export to import: the file named, or standard input for "-" (then
// `file` stays closed).
std::istream* open_import_input(const ImportCommand& c, Io& io, std::ifstream& file) {
  if (c.input == "-") return &io.in;
  file.open(c.input, std::ios::binary);
  if (!file) throw ToolError(kExitFailure, "cannot open the input file " + named(c.input));
  return &file;
}

// Into a PostgreSQL store: one transaction, so a failure leaves it as it was.
int run_import_postgres(const ImportCommand& c, Io& io) {
  std::ifstream file;
  std::istream* in = open_import_input(c, io, file);
  ProgressBar bar(io.err, io.err_is_terminal, "import");
  ImportOptions options;
  options.progress = [&](std::int64_t done, std::int64_t) { bar.update(done); };
  std::int64_t n = 0;
  try {
    n = import_into_postgres(c.db, *in, options);
  } catch (...) {
    bar.finish();
    throw;
  }
  bar.finish();
  io.err << "imported " << n << " events into " << store_name(c.db) << '\n';
  return kExitOk;
}

}  // namespace

int run_import(const ImportCommand& c, Io& io) {
  if (is_postgres_url(c.db)) return run_import_postgres(c, io);
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
  std::istream* in = open_import_input(c, io, file);
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
// The partitions of consumer groups (annals/projections/consumer_group.hpp):
// owner, fencing token, checkpoint and lag, listed under the group's row.
static std::vector<ConsumerGroupStatus> read_consumer_groups(const CommandReadModel& model,
                                                             std::int64_t head) {
  try {
    if (model.looking) return model.looking->consumer_groups(head);
    return SqliteReadModel(model.location, SqliteReadModelOptions{.read_only = true})
        .consumer_groups(head);
  } catch (const StorageError& e) {
    throw ToolError(kExitFailure, "reading " + model.name + ": " + e.what());
  }
}

int run_projections(const ProjectionsCommand& c, Io& io) {
  const auto store = open_store(c.db);
  const auto model = find_read_model(c.db, c.read_model);
  const auto rows = load_checkpoints(model);  // before the head: a live runner may move on
  const std::int64_t head = store->head_position();
  const auto groups = read_consumer_groups(model, head);
  const auto group_of = [&](const std::string& name) -> const ConsumerGroupStatus* {
    for (const auto& g : groups) {
      if (g.name == name) return &g;
    }
    return nullptr;
  };
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
      if (const auto* g = group_of(r.name)) {
        Json parts = Json::array();
        for (const auto& p : g->partition_status) {
          parts.push_back({{"partition", p.partition},
                           {"checkpoint", p.checkpoint},
                           {"lag", p.lag},
                           {"owner", p.owner ? Json(*p.owner) : Json()},
                           {"fencing_token", p.fencing_token},
                           {"failure", p.failure ? Json{{"position", p.failure->position},
                                                        {"attempts", p.failure->attempts},
                                                        {"message", p.failure->message}}
                                                 : Json()}});
        }
        j["partitions"] = std::move(parts);
        j["workers"] = g->live_workers;
      }
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
    if (const auto* g = group_of(r.name)) {
      for (const auto& p : g->partition_status) {
        io.out << "  partition " << p.partition << "\tcheckpoint " << p.checkpoint << "\tlag "
               << p.lag << "\ttoken " << p.fencing_token << '\t'
               << (p.owner ? "owner " + printable(*p.owner) : std::string("no owner"));
        if (p.failure) {
          io.out << "\tfailed at position " << p.failure->position << ": "
                 << printable(p.failure->message);
        }
        io.out << '\n';
      }
    }
  }
  if (!beyond_head.empty()) {
    std::string names;
    for (const auto& n : beyond_head) names += (names.empty() ? "" : ", ") + n;
    throw ToolError(kExitIntegrity,
                    model.name + ": checkpoint beyond the store's head (position " +
                        std::to_string(head) + " in " + store_name(c.db) + "): " + names +
                        "; events were removed from the store's tail, or the read model "
                        "belongs to another store (check the store with annals verify, then "
                        "rebuild the projection)");
  }
  return kExitOk;
}

// ---- rebuild ---------------------------------------------------------------------

int run_rebuild(const RebuildCommand& c, Io& io) {
  if (c.poll_ms < 1) throw ToolError(kExitUsage, "--poll-interval must be at least 1 ms");
  const auto store = open_store(c.db);
  const auto model = find_read_model(c.db, c.read_model);
  const auto rows = load_checkpoints(model);
  if (std::none_of(rows.begin(), rows.end(),
                   [&](const CheckpointRow& r) { return r.name == c.name; })) {
    std::string known;
    for (const auto& r : rows) known += (known.empty() ? "" : ", ") + r.name;
    throw ToolError(kExitFailure,
                    "no projection named '" + c.name + "' in " + model.name +
                        (known.empty() ? " (it has none)" : " (it has: " + known + ")"));
  }
  request_rebuild(*open_for_requests(model), c.name);
  io.err << "rebuild of '" << c.name << "' requested in " << model.name << '\n';
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
    for (auto& r : load_checkpoints(model)) {
      if (r.name == c.name) row = std::move(r);
    }
    if (!row) {
      throw ToolError(kExitFailure, "projection '" + c.name + "' disappeared from " + model.name);
    }
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
