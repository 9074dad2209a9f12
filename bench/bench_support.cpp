#include "bench_support.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include <annals/core/clock.hpp>
#include <annals/core/event_hash.hpp>
#include <annals/core/event_id.hpp>
#include <annals/store/sqlite_event_store.hpp>

namespace annals::bench {

Sizes parse_sizes(int& argc, char** argv) {
  std::string name = "full";
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.starts_with("--size=")) {
      name = std::string(arg.substr(7));
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  // Appends with synchronous=FULL cost an fsync each (0.15 to a few ms on
  // this kind of disk). The cases of few events per call still run for a few
  // hundred milliseconds at the fast end: shorter runs measured mostly where
  // a checkpoint happened to fall, and their ratios wandered by 10%.
  // name, append_1, batch 10/100/1000 calls, typed calls, per thread,
  // stream, all, snapshot tail, warm-up
  if (name == "tiny") return Sizes{name, 5, 5, 3, 2, 2, 5, 300, 2'000, 20, 2 * kWarmUpBatch};
  if (name == "quick") {
    return Sizes{name, 400, 400, 100, 20, 100, 100, 10'000, 100'000, 100, 12'000};
  }
  if (name == "full") {
    return Sizes{name, 1'500, 1'000, 300, 100, 300, 400, 10'000, 1'000'000, 100, 12'000};
  }
  throw std::invalid_argument("--size must be tiny, quick or full, got '" + name + "'");
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                     "/annals-bench-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    throw std::runtime_error("cannot create a temporary directory from '" + tmpl +
                             "': " + std::strerror(errno));
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);  // best effort: a destructor never throws
}

Deposited deposit(std::int64_t i) {
  return Deposited{1000 + i % 9000, "EUR", "benchmark deposit number " + std::to_string(i)};
}

const Json& bench_metadata() {
  static const Json metadata = {{"actor", "bench"},
                                {"correlation_id", "0191c1de-0000-7000-8000-000000000000"}};
  return metadata;
}

EventData deposit_data(std::int64_t i) { return encode(deposit(i), bench_metadata()); }

std::int64_t amount_of(std::string_view payload) {
  return Json::parse(payload).at("amount").get<std::int64_t>();
}

Projection balances_projection() {
  return Projection{
      .name = "balances",
      .filter = {},
      .setup = [](SqlTransaction& tx) { tx.exec_script(kBalancesTable); },
      .apply =
          [](SqlTransaction& tx, const RecordedEvent& e) {
            tx.exec(kUpsert, {e.stream_id, amount_of(e.payload)});
          },
      .reset = [](SqlTransaction& tx) { tx.exec("DELETE FROM balances"); },
  };
}

// ---- raw SQLite -------------------------------------------------------------

namespace {

[[noreturn]] void fail(sqlite3* db, const std::string& doing) {
  throw std::runtime_error("SQLite error while " + doing + ": " + sqlite3_errmsg(db));
}

}  // namespace

RawDb::RawDb(const std::filesystem::path& path, bool synchronous_full, bool create) {
  const int flags =
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    const std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw std::runtime_error("cannot open '" + path.string() + "': " + message);
  }
  sqlite3_busy_timeout(db_, 30'000);
  exec("PRAGMA journal_mode = WAL");
  exec(synchronous_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
}

RawDb::~RawDb() { sqlite3_close_v2(db_); }

void RawDb::exec(const char* sql) {
  if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    fail(db_, std::string("running ") + sql);
  }
}

RawStatement::RawStatement(RawDb& db, const char* sql) : db_(db.get()) {
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &st_, nullptr) != SQLITE_OK) {
    fail(db_, std::string("preparing ") + sql);
  }
}

RawStatement::~RawStatement() { sqlite3_finalize(st_); }

bool RawStatement::step() {
  const int rc = sqlite3_step(st_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail(db_, std::string("running ") + sqlite3_sql(st_));
}

void RawStatement::reset() {
  sqlite3_reset(st_);
  sqlite3_clear_bindings(st_);
}

std::vector<Row> prepare_rows(const std::string& stream_id, std::int64_t count,
                              std::int64_t first_position) {
  std::vector<Row> rows;
  rows.reserve(static_cast<std::size_t>(count));
  EventHash previous{};
  const std::int64_t now = to_micros(SystemClock::shared()->now());
  for (std::int64_t i = 1; i <= count; ++i) {
    EventData data = deposit_data(i);
    RecordedEvent e;
    e.position = first_position + i - 1;
    e.stream_id = stream_id;
    e.version = i;
    e.event_id = new_event_id();
    e.type = data.type;
    e.schema_version = data.schema_version;
    e.payload = std::move(data.payload);
    e.metadata = std::move(data.metadata);
    e.recorded_at = from_micros(now);
    e.hash = chain_hash(previous, e);
    previous = e.hash;
    rows.push_back(Row{e.position, e.stream_id, e.version, e.event_id, e.type, e.schema_version,
                       e.payload, e.metadata, now, e.hash});
  }
  return rows;
}

namespace {

std::filesystem::path create_store(const std::filesystem::path& path) {
  SqliteEventStore{path};  // creates the schema, then closes
  return path;
}

// The least an event store can be: the same columns but the hash, a primary
// key on the position and the (stream, version) uniqueness that answers the
// expected-version lookup; no triggers, no other constraint, no STRICT.
std::filesystem::path create_minimal_store(const std::filesystem::path& path) {
  RawDb db(path, true, true);
  db.exec(
      "CREATE TABLE events (position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, "
      "version INTEGER NOT NULL, event_id TEXT NOT NULL, type TEXT NOT NULL, "
      "schema_version INTEGER NOT NULL, payload TEXT NOT NULL, metadata TEXT NOT NULL, "
      "recorded_at INTEGER NOT NULL, UNIQUE (stream_id, version))");
  return path;
}

}  // namespace

BaselineWriter::BaselineWriter(const std::filesystem::path& path, BaselineSchema schema)
    : db_(schema == BaselineSchema::kMinimal ? create_minimal_store(path) : create_store(path),
          true),
      with_hash_(schema == BaselineSchema::kAnnals),
      begin_(db_, "BEGIN IMMEDIATE"),
      commit_(db_, "COMMIT"),
      version_(db_, "SELECT version FROM events WHERE stream_id = ?1 ORDER BY version DESC LIMIT 1"),
      insert_(db_, with_hash_
                       ? "INSERT INTO events (position, stream_id, version, event_id, type, "
                         "schema_version, payload, metadata, recorded_at, hash) VALUES (?1, ?2, "
                         "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                       : "INSERT INTO events (position, stream_id, version, event_id, type, "
                         "schema_version, payload, metadata, recorded_at) VALUES (?1, ?2, ?3, "
                         "?4, ?5, ?6, ?7, ?8, ?9)") {}

std::int64_t BaselineWriter::warm_up(std::int64_t events) {
  const std::vector<Row> rows = prepare_rows(std::string(kWarmUpStream), events);
  for (std::int64_t done = 0; done < events; done += kWarmUpBatch) {
    append(&rows[static_cast<std::size_t>(done)],
           static_cast<std::size_t>(std::min(kWarmUpBatch, events - done)), done);
  }
  return events;
}

void BaselineWriter::append(const Row* rows, std::size_t count, std::int64_t expected) {
  begin_.step();
  begin_.reset();
  sqlite3_bind_text(version_.get(), 1, rows[0].stream_id.data(),
                    static_cast<int>(rows[0].stream_id.size()), SQLITE_STATIC);
  const std::int64_t actual = version_.step() ? sqlite3_column_int64(version_.get(), 0) : 0;
  version_.reset();
  if (actual != expected) {
    db_.exec("ROLLBACK");
    throw std::runtime_error("baseline: wrong expected version");
  }
  sqlite3_stmt* st = insert_.get();
  for (std::size_t i = 0; i < count; ++i) {
    const Row& r = rows[i];
    sqlite3_bind_int64(st, 1, r.position);
    sqlite3_bind_text(st, 2, r.stream_id.data(), static_cast<int>(r.stream_id.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, r.version);
    sqlite3_bind_text(st, 4, r.event_id.data(), static_cast<int>(r.event_id.size()),
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 5, r.type.data(), static_cast<int>(r.type.size()), SQLITE_STATIC);
    sqlite3_bind_int(st, 6, r.schema_version);
    sqlite3_bind_text(st, 7, r.payload.data(), static_cast<int>(r.payload.size()), SQLITE_STATIC);
    sqlite3_bind_text(st, 8, r.metadata.data(), static_cast<int>(r.metadata.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, r.recorded_at);
    if (with_hash_) {
      sqlite3_bind_blob(st, 10, r.hash.data(), static_cast<int>(r.hash.size()), SQLITE_STATIC);
    }
    insert_.step();
    sqlite3_reset(st);
  }
  commit_.step();
  commit_.reset();
}

void read_row(sqlite3_stmt* st, Row& out) {
  const auto text = [st](int column) {
    return std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, column)),
                       static_cast<std::size_t>(sqlite3_column_bytes(st, column)));
  };
  out.position = sqlite3_column_int64(st, 0);
  out.stream_id = text(1);
  out.version = sqlite3_column_int64(st, 2);
  out.event_id = text(3);
  out.type = text(4);
  out.schema_version = sqlite3_column_int(st, 5);
  out.payload = text(6);
  out.metadata = text(7);
  out.recorded_at = sqlite3_column_int64(st, 8);
  if (sqlite3_column_bytes(st, 9) == static_cast<int>(out.hash.size())) {
    std::memcpy(out.hash.data(), sqlite3_column_blob(st, 9), out.hash.size());
  }
}

// ---- prebuilt stores ---------------------------------------------------------

std::string aggregate_stream() { return Account(std::string(kAggregateId)).stream_id(); }

void ensure_store(const std::filesystem::path& path, std::int64_t stream_events,
                  std::int64_t snapshot_tail, std::int64_t all_events) {
  if (std::filesystem::exists(path)) return;
  const std::filesystem::path building = path.string() + ".building";
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(building.string() + suffix);
  }
  {
    SqliteStoreOptions options;
    options.synchronous = Synchronous::normal;  // a fixture: nothing to lose on power loss
    SqliteEventStore store(building, options);
    const std::string stream = aggregate_stream();
    constexpr std::int64_t kPerCall = 500;
    for (std::int64_t v = 0; v < stream_events; v += kPerCall) {
      std::vector<EventData> events;
      for (std::int64_t i = v; i < std::min(stream_events, v + kPerCall); ++i) {
        events.push_back(deposit_data(i));
      }
      store.append(stream, ExpectedVersion::exactly(v), std::move(events));
    }
    // The snapshot the "with snapshot" load starts from.
    const std::int64_t at = stream_events - snapshot_tail;
    if (at > 0) {
      std::int64_t balance = 0;
      for (std::int64_t i = 0; i < at; ++i) balance += deposit(i).amount;
      store.save_snapshot(Snapshot{stream, at, Account::snapshot_schema_version,
                                   Json{{"balance", balance}, {"deposits", at}}.dump(), {}});
    }
    // Other accounts, 10 streams per call with 50 events each.
    std::int64_t written = stream_events;
    std::int64_t round = 0;
    constexpr std::int64_t kStreams = 1'000;
    while (written < all_events) {
      std::vector<StreamAppend> batch;
      for (std::int64_t s = 0; s < 10 && written < all_events; ++s) {
        const std::int64_t account = (round * 10 + s) % kStreams;
        StreamAppend part{"account-x" + std::to_string(account), ExpectedVersion::any(), {}};
        for (std::int64_t i = 0; i < 50 && written < all_events; ++i, ++written) {
          part.events.push_back(deposit_data(written));
        }
        batch.push_back(std::move(part));
      }
      store.append(std::move(batch));
      ++round;
    }
  }
  // Fold the WAL into the file, so every reader starts from the same state.
  {
    RawDb db(building, false);
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }
  std::filesystem::rename(building, path);
  for (const char* suffix : {"-wal", "-shm"}) {
    std::filesystem::remove(building.string() + suffix);
  }
}

std::filesystem::path fixture_store(std::int64_t stream_events, std::int64_t snapshot_tail,
                                    std::int64_t all_events, const std::filesystem::path& fallback) {
  const char* dir = std::getenv("ANNALS_BENCH_FIXTURES");
  const std::filesystem::path base = dir != nullptr && *dir != '\0' ? dir : fallback;
  return base / ("store-" + std::to_string(stream_events) + "-" + std::to_string(snapshot_tail) +
                 "-" + std::to_string(all_events) + ".db");
}

std::int64_t peak_rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmHWM:")) return std::stoll(line.substr(6));
  }
  return -1;
}

}  // namespace annals::bench
