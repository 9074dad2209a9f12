#pragma once
/// Shared pieces of the Annals benchmarks (bench/): workload sizes, temporary
/// directories, the domain events they append, the raw-SQLite baseline and the
/// prebuilt store files that the read benchmarks share.
///
/// The baseline is what a minimal correct event store written directly on the
/// SQLite C API would do per call, on a file whose schema a real
/// SqliteEventStore created (same table, indexes and triggers), with the same
/// pragmas (WAL, synchronous=FULL, busy_timeout): BEGIN IMMEDIATE, one
/// expected-version lookup per stream, one prepared INSERT per event with the
/// JSON, event id and chain hash computed before the clock starts, COMMIT.
/// docs/performance.md lists what each case does on each side.
///
/// Thread safety: none of these types may be shared between threads unless
/// stated otherwise.

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <annals/aggregates/aggregate.hpp>
#include <annals/core/codec.hpp>
#include <annals/core/event.hpp>
#include <annals/projections/projection.hpp>

namespace annals::bench {

/// How big each workload is: `tiny` for the ctest smoke run, `quick` for
/// `bench/run --quick`, `full` for `bench/run`.
struct Sizes {
  std::string name;
  std::int64_t append_1_calls;           ///< appends of one event
  std::int64_t batch_10_calls;           ///< appends of 10 events
  std::int64_t batch_100_calls;          ///< appends of 100 events
  std::int64_t batch_1000_calls;         ///< appends of 1,000 events
  std::int64_t typed_100_calls;          ///< appends of 100 typed events
  std::int64_t group_events_per_thread;  ///< single-event appends per thread (8 threads)
  std::int64_t stream_events;            ///< events of the stream read / loaded
  std::int64_t all_events;               ///< events in the store read by read_all / catch-up
  std::int64_t snapshot_tail;            ///< events after the snapshot in load with snapshot
  std::int64_t warm_up_events;           ///< untimed events both sides append first
};

/// The stream both sides of an append case fill before their clock starts.
///
/// Why: SQLite's write-ahead log grows until its first checkpoint (1,000
/// pages), and while it grows every commit's fsync also writes the file's new
/// size. Those first few megabytes of a store's life cost up to twice as much
/// per commit as every later one, when the log is rewritten in place. A case
/// that writes few pages (eight single events per commit) would otherwise be
/// measured mostly in that phase and a case that writes many mostly after it,
/// so the two sides of one row would not measure the same thing. Each side
/// appends `Sizes::warm_up_events` events to this stream, in batches of
/// kWarmUpBatch, untimed and identically (docs/performance.md).
inline constexpr std::string_view kWarmUpStream = "warmup";
inline constexpr std::int64_t kWarmUpBatch = 100;

/// The sizes named by `--size=NAME` (tiny, quick or full), removed from argv
/// so that Google Benchmark does not see it. Default: full.
/// Throws: std::invalid_argument naming the bad value.
Sizes parse_sizes(int& argc, char** argv);

/// A fresh directory under $TMPDIR (or /tmp), removed with its content on
/// destruction. Throws: std::runtime_error when it cannot be created.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const noexcept { return path_; }
  std::filesystem::path file(std::string_view name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// ---- the domain the benchmarks append ---------------------------------------

struct Deposited {
  static constexpr std::string_view type_name = "bench.Deposited";
  static constexpr int schema_version = 1;
  std::int64_t amount = 0;
  std::string currency;
  std::string note;
};
ANNALS_EVENT_FIELDS(Deposited, amount, currency, note)

using AccountEvent = std::variant<Deposited>;

/// The typed event number `i` (its payload is about 70 bytes of JSON).
Deposited deposit(std::int64_t i);
/// The metadata every benchmark event carries (about 50 bytes of JSON).
const Json& bench_metadata();
/// deposit(i) pre-serialized, with bench_metadata(); the event id is left empty.
EventData deposit_data(std::int64_t i);

/// An aggregate summing its deposits, snapshottable.
class Account : public Aggregate<Account, AccountEvent> {
 public:
  static constexpr std::string_view category = "account";
  static constexpr int snapshot_schema_version = 1;
  using Aggregate::Aggregate;
  void apply(const Deposited& e) {
    balance_ += e.amount;
    ++deposits_;
  }
  Json snapshot_state() const { return Json{{"balance", balance_}, {"deposits", deposits_}}; }
  void restore_state(const Json& state) {
    balance_ = state.at("balance").get<std::int64_t>();
    deposits_ = state.at("deposits").get<std::int64_t>();
  }
  std::int64_t balance() const noexcept { return balance_; }
  std::int64_t deposits() const noexcept { return deposits_; }

 private:
  std::int64_t balance_ = 0;
  std::int64_t deposits_ = 0;
};

// ---- the read model of the catch-up cases --------------------------------------

/// The balances table (account, cents, deposits) of the catch-up read model.
inline constexpr const char* kBalancesTable =
    "CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, cents INTEGER NOT NULL, "
    "deposits INTEGER NOT NULL)";
/// Adds one deposit (?1 account, ?2 cents) to the balances table.
inline constexpr const char* kUpsert =
    "INSERT INTO balances VALUES (?1, ?2, 1) ON CONFLICT(account) DO UPDATE "
    "SET cents = cents + excluded.cents, deposits = deposits + 1";
/// The "amount" of a Deposited payload. Throws: nlohmann's exceptions.
std::int64_t amount_of(std::string_view payload);
/// The projection keeping the balances table: one upsert per event.
Projection balances_projection();

// ---- raw SQLite -------------------------------------------------------------

/// An sqlite3* connection, closed on destruction.
class RawDb {
 public:
  /// Opens `path` read-write (creating it if `create`) with the store's
  /// pragmas (WAL, synchronous as given, busy_timeout 30 s).
  /// Throws: std::runtime_error with SQLite's message.
  RawDb(const std::filesystem::path& path, bool synchronous_full, bool create = false);
  ~RawDb();
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;
  sqlite3* get() const noexcept { return db_; }
  /// Runs SQL without results. Throws: std::runtime_error.
  void exec(const char* sql);

 private:
  sqlite3* db_ = nullptr;
};

/// A prepared statement, finalized on destruction.
class RawStatement {
 public:
  RawStatement(RawDb& db, const char* sql);
  ~RawStatement();
  RawStatement(const RawStatement&) = delete;
  RawStatement& operator=(const RawStatement&) = delete;
  sqlite3_stmt* get() const noexcept { return st_; }
  /// sqlite3_step; throws std::runtime_error on anything but SQLITE_ROW/DONE.
  bool step();
  /// Resets and clears the bindings.
  void reset();

 private:
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
};

/// One events row, ready to insert: JSON, id and chain hash computed.
struct Row {
  std::int64_t position = 0;
  std::string stream_id;
  std::int64_t version = 0;
  std::string event_id;
  std::string type;
  int schema_version = 1;
  std::string payload;
  std::string metadata;
  std::int64_t recorded_at = 0;
  EventHash hash{};
};

/// `count` rows of stream `stream_id` at versions 1..count and positions
/// from `first_position` on (the store holds that many minus one events),
/// payloads deposit(i), ids generated, hashes chained.
std::vector<Row> prepare_rows(const std::string& stream_id, std::int64_t count,
                              std::int64_t first_position = 1);

/// The table a BaselineWriter appends to: the one a SqliteEventStore creates
/// (STRICT, hash column, UNIQUE event_id and (stream_id, version), the
/// append-only triggers), or a minimal one: the same columns without the
/// hash, INTEGER PRIMARY KEY position, UNIQUE(stream_id, version), nothing else.
enum class BaselineSchema { kAnnals, kMinimal };

/// The baseline's writer: the minimal correct append, with prepared statements.
class BaselineWriter {
 public:
  /// Creates the schema on `path` (the Annals one with a real
  /// SqliteEventStore, or the minimal one), then opens it raw with
  /// synchronous=FULL.
  explicit BaselineWriter(const std::filesystem::path& path,
                          BaselineSchema schema = BaselineSchema::kAnnals);
  /// One transaction: BEGIN IMMEDIATE, the stream's current version, a check
  /// against `expected` (throws std::runtime_error on mismatch), the inserts,
  /// COMMIT.
  void append(const Row* rows, std::size_t count, std::int64_t expected);
  /// Appends `events` rows to kWarmUpStream in batches of kWarmUpBatch, as
  /// the Annals side does before its clock starts; returns the number of
  /// events now stored (the next row's position minus one).
  std::int64_t warm_up(std::int64_t events);

 private:
  RawDb db_;
  bool with_hash_;
  RawStatement begin_;
  RawStatement commit_;
  RawStatement version_;
  RawStatement insert_;
};

/// Reads every column of the current row into `out` (what a store's reader
/// must do to hand out an event).
void read_row(sqlite3_stmt* st, Row& out);

// ---- prebuilt stores ---------------------------------------------------------

/// The stream read by read_stream and loaded by the aggregate cases.
inline constexpr std::string_view kAggregateId = "7";
std::string aggregate_stream();

/// Builds (once; reused when it exists) an Annals store at `path` holding
/// `aggregate_stream()` with `stream_events` deposits and a snapshot at version
/// stream_events - snapshot_tail, followed by other streams' events up to
/// `all_events` in total. The file is built under a temporary name and renamed,
/// so a half-built file is never reused.
void ensure_store(const std::filesystem::path& path, std::int64_t stream_events,
                  std::int64_t snapshot_tail, std::int64_t all_events);

/// The store file that ensure_store() builds with these arguments, inside
/// $ANNALS_BENCH_FIXTURES (bench/run sets it so that every process shares
/// one), or inside `fallback` when that is not set.
std::filesystem::path fixture_store(std::int64_t stream_events, std::int64_t snapshot_tail,
                                    std::int64_t all_events, const std::filesystem::path& fallback);

/// Peak resident set size of this process in KiB (VmHWM).
std::int64_t peak_rss_kib();

}  // namespace annals::bench
