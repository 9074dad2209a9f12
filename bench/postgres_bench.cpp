// PostgresEventStore against raw libpq on the same server in the same run
// (docs/performance.md, "PostgreSQL"). The baseline ("baseline/<case>") is
// what a minimal correct event store written directly on libpq does: the
// statements the store sends, prepared once, on a schema a real
// PostgresEventStore created (same tables, indexes and triggers), one
// transaction per append under the same head-row lock, the chain hash
// computed from the previous event's. Reads page through the same queries
// and build the same RecordedEvent values.
//
//   pg_append_1          appends of one event to one stream, exactly(version)
//   pg_append_batch_100  appends of 100 events
//   pg_read_stream       read_stream of one stream, start to end
//   pg_read_all          read_all of the store, start to end
//   pg_8_appenders       8 threads sharing one store (a service's request
//                        threads), each appending one event per call to a
//                        stream of its own ("annals"), against one appender's
//                        one-event transactions ("baseline")
//   pg_8_separate_stores the same with a store per thread, as 8 processes
//                        would append: their transactions meet only at the
//                        head row (informational, no goal)
//
// Usage: annals_bench_postgres [--size=tiny|quick|full] [--reps=N] [--out=FILE]
//   Starts a throwaway cluster (tests/postgres/postgres_cluster.hpp, fsync on)
//   unless ANNALS_BENCH_PG_URL names a server. Runs every case N times
//   (default 3), alternating which side goes first, each on fresh schemas;
//   prints events per second and writes Google Benchmark-shaped JSON
//   ({"benchmarks": [{"name", "items_per_second"}...]}) to FILE, which
//   annals_bench_report reads like the other programs' output.
//   ANNALS_BENCH_PG_SETTINGS replaces the server settings ("-c fsync=on");
//   ANNALS_BENCH_PG_UNPREPARED=1 makes the baseline send its statements
//   unprepared, as the store does (to measure what preparing is worth).
// Exit code: 0; 1 when a case fails; 2 for bad arguments.

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <annals/core/event_hash.hpp>
#include <annals/core/event_id.hpp>
#include <annals/store/postgres_event_store.hpp>

#include "bench_support.hpp"
#include "postgres/postgres_cluster.hpp"

namespace annals::bench {
namespace {

struct PgSizes {
  std::int64_t append_1;        // single-event appends
  std::int64_t batch_100;       // appends of 100 events
  std::int64_t read_events;     // events read by the read cases
  std::int64_t per_appender;    // single-event appends per thread in pg_8_appenders
};

PgSizes pg_sizes(const std::string& name) {
  if (name == "tiny") return {20, 2, 300, 5};
  if (name == "quick") return {300, 10, 20'000, 100};
  return {1'000, 30, 100'000, 250};
}

std::string schema_name() {
  static int next = 0;
  return "bench_" + std::to_string(::getpid()) + "_" + std::to_string(++next);
}

PostgresStoreOptions in_schema(const std::string& schema) {
  PostgresStoreOptions options;
  options.schema = schema;
  return options;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// ---- The raw libpq baseline ----

constexpr Oid kInt8 = 20, kInt4 = 23, kText = 25, kBytea = 17;

void put_be(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
std::int64_t get_i8(const PGresult* r, int row, int col) {
  const auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r, row, col));
  std::uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u = (u << 8) | p[i];
  return static_cast<std::int64_t>(u);
}
int get_i4(const PGresult* r, int row, int col) {
  const auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r, row, col));
  std::uint32_t u = 0;
  for (int i = 0; i < 4; ++i) u = (u << 8) | p[i];
  return static_cast<int>(u);
}
std::string get_bytes(const PGresult* r, int row, int col) {
  return std::string(PQgetvalue(r, row, col), static_cast<std::size_t>(PQgetlength(r, row, col)));
}

// Binary parameters of one prepared statement call.
struct Args {
  std::vector<std::string> values;
  Args& i8(std::int64_t v) {
    values.emplace_back();
    put_be(values.back(), static_cast<std::uint64_t>(v), 8);
    return *this;
  }
  Args& i4(int v) {
    values.emplace_back();
    put_be(values.back(), static_cast<std::uint32_t>(v), 4);
    return *this;
  }
  Args& bytes(std::string_view v) {
    values.emplace_back(v);
    return *this;
  }
};

class RawPg {
 public:
  RawPg(const std::string& url, const std::string& schema) {
    const std::string path = "-c search_path=\"" + schema + "\"";
    const char* keys[] = {"dbname", "options", nullptr};
    const char* values[] = {url.c_str(), path.c_str(), nullptr};
    conn_.reset(PQconnectdbParams(keys, values, 1));
    if (PQstatus(conn_.get()) != CONNECTION_OK) {
      throw std::runtime_error(std::string("baseline: cannot connect: ") + PQerrorMessage(conn_.get()));
    }
    prepare("head", "SELECT position FROM annals_head WHERE id = 1 FOR UPDATE", {});
    prepare("newest", "SELECT hash, recorded_at FROM events WHERE position = $1", {kInt8});
    prepare("retry",
            "SELECT e.stream_id, e.version, e.position, s.version FROM (SELECT 1) AS one "
            "LEFT JOIN events e ON e.event_id = $1 LEFT JOIN streams s ON s.stream_id = $2",
            {kText, kText});
    prepare("dup", "SELECT stream_id, version FROM events WHERE event_id = $1", {kText});
    prepare("insert",
            "INSERT INTO events (position, stream_id, version, event_id, type, schema_version, "
            "payload, metadata, recorded_at, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            {kInt8, kText, kInt8, kText, kText, kInt4, kBytea, kBytea, kInt8, kBytea});
    prepare("insert_last",
            "WITH event AS (INSERT INTO events (position, stream_id, version, event_id, type, "
            "schema_version, payload, metadata, recorded_at, hash) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)) "
            "INSERT INTO streams (stream_id, version) VALUES ($2, $3) "
            "ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version",
            {kInt8, kText, kInt8, kText, kText, kInt4, kBytea, kBytea, kInt8, kBytea});
    prepare("move", "UPDATE annals_head SET position = $1 WHERE id = 1", {kInt8});
    const std::string columns =
        "position, stream_id, version, event_id, type, schema_version, payload, metadata, "
        "recorded_at, hash";
    prepare("read_stream",
            "SELECT " + columns +
                " FROM events WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT $3",
            {kText, kInt8, kInt8});
    prepare("read_all",
            "SELECT " + columns + " FROM events WHERE position >= $1 ORDER BY position LIMIT $2",
            {kInt8, kInt8});
  }

  struct ResultDeleter {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
  };
  using Result = std::unique_ptr<PGresult, ResultDeleter>;

  Result run(const char* name, const Args& args = {}) {
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    for (const auto& v : args.values) {
      values.push_back(v.data());
      lengths.push_back(static_cast<int>(v.size()));
      formats.push_back(1);
    }
    const int n = static_cast<int>(values.size());
    const auto& [sql, types] = statements_.at(name);
    Result r(unprepared_ ? PQexecParams(conn_.get(), sql.c_str(), n, types.data(), values.data(),
                                        lengths.data(), formats.data(), 1)
                         : PQexecPrepared(conn_.get(), name, n, values.data(), lengths.data(),
                                          formats.data(), 1));
    check(r.get(), name);
    return r;
  }
  void plain(const char* sql) {
    Result r(PQexec(conn_.get(), sql));
    check(r.get(), sql);
  }

  // One transaction: the store's statements, in its order, for one stream.
  std::int64_t append(const std::string& stream, std::int64_t expected,
                      const std::vector<EventData>& events) {
    plain("BEGIN");
    std::int64_t position = get_i8(run("head").get(), 0, 0);
    EventHash previous{};
    std::int64_t last_time = 0;
    if (position > 0) {
      auto last = run("newest", Args().i8(position));
      const std::string h = get_bytes(last.get(), 0, 0);
      std::memcpy(previous.data(), h.data(), previous.size());
      last_time = get_i8(last.get(), 0, 1);
    }
    auto first = run("retry", Args().bytes(events.front().event_id).bytes(stream));
    if (PQgetisnull(first.get(), 0, 0) == 0) throw std::runtime_error("baseline: unexpected retry");
    std::int64_t version = PQgetisnull(first.get(), 0, 3) != 0 ? 0 : get_i8(first.get(), 0, 3);
    if (version != expected) throw std::runtime_error("baseline: wrong expected version");
    for (std::size_t i = 1; i < events.size(); ++i) {  // the first: "retry" above
      if (PQntuples(run("dup", Args().bytes(events[i].event_id)).get()) != 0) {
        throw std::runtime_error("baseline: duplicate id");
      }
    }
    const std::int64_t now = std::max(
        last_time, static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                 std::chrono::system_clock::now().time_since_epoch())
                                                 .count()));
    for (std::size_t i = 0; i < events.size(); ++i) {
      const EventData& data = events[i];
      RecordedEvent e;
      e.position = ++position;
      e.stream_id = stream;
      e.version = ++version;
      e.event_id = data.event_id;
      e.type = data.type;
      e.schema_version = data.schema_version;
      e.payload = data.payload;
      e.metadata = data.metadata;
      e.recorded_at = from_micros(now);
      e.hash = chain_hash(previous, e);
      run(i + 1 < events.size() ? "insert" : "insert_last", Args()
                        .i8(e.position)
                        .bytes(e.stream_id)
                        .i8(e.version)
                        .bytes(e.event_id)
                        .bytes(e.type)
                        .i4(e.schema_version)
                        .bytes(e.payload)
                        .bytes(e.metadata)
                        .i8(now)
                        .bytes(std::string_view(reinterpret_cast<const char*>(e.hash.data()),
                                                e.hash.size())));
      previous = e.hash;
    }
    run("move", Args().i8(position));
    plain("COMMIT");
    return version;
  }

  static RecordedEvent event_at(const PGresult* r, int row) {
    RecordedEvent e;
    e.position = get_i8(r, row, 0);
    e.stream_id = get_bytes(r, row, 1);
    e.version = get_i8(r, row, 2);
    e.event_id = get_bytes(r, row, 3);
    e.type = get_bytes(r, row, 4);
    e.schema_version = get_i4(r, row, 5);
    e.payload = get_bytes(r, row, 6);
    e.metadata = get_bytes(r, row, 7);
    e.recorded_at = from_micros(get_i8(r, row, 8));
    const std::string h = get_bytes(r, row, 9);
    if (h.size() == e.hash.size()) std::memcpy(e.hash.data(), h.data(), e.hash.size());
    return e;
  }

 private:
  void prepare(const char* name, const std::string& sql, const std::vector<Oid>& types) {
    statements_[name] = {sql, types};
    Result r(PQprepare(conn_.get(), name, sql.c_str(), static_cast<int>(types.size()),
                       types.empty() ? nullptr : types.data()));
    check(r.get(), name);
  }
  void check(const PGresult* r, const char* what) {
    const auto s = r == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
      throw std::runtime_error(std::string("baseline: ") + what + ": " +
                               (r ? PQresultErrorMessage(r) : PQerrorMessage(conn_.get())));
    }
  }
  struct ConnDeleter {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
  };
  std::unique_ptr<PGconn, ConnDeleter> conn_;
  std::map<std::string, std::pair<std::string, std::vector<Oid>>> statements_;
  // ANNALS_BENCH_PG_UNPREPARED=1: the same statements sent unprepared, as
  // the store sends them, to show what preparing them is worth.
  const bool unprepared_ = std::getenv("ANNALS_BENCH_PG_UNPREPARED") != nullptr;
};

// ---- Cases: each returns events per second ----

std::vector<std::vector<EventData>> batches(std::int64_t calls, std::int64_t per_call) {
  std::vector<std::vector<EventData>> out(static_cast<std::size_t>(calls));
  for (std::int64_t c = 0; c < calls; ++c) {
    for (std::int64_t i = 0; i < per_call; ++i) {
      EventData e = deposit_data(c * per_call + i);
      e.event_id = new_event_id();
      out[static_cast<std::size_t>(c)].push_back(std::move(e));
    }
  }
  return out;
}

constexpr std::int64_t kWarmUp = 20;  // untimed single-event appends on both sides first

double annals_append(const std::string& url, std::int64_t calls, std::int64_t per_call) {
  PostgresEventStore store(url, in_schema(schema_name()));
  for (auto& b : batches(kWarmUp, 1)) store.append("warm-up", ExpectedVersion::any(), b);
  auto work = batches(calls, per_call);
  const auto start = std::chrono::steady_clock::now();
  std::int64_t version = 0;
  for (auto& b : work) {
    version = store.append("account-1", ExpectedVersion::exactly(version), std::move(b)).stream_version;
  }
  return static_cast<double>(calls * per_call) / seconds_since(start);
}

double baseline_append(const std::string& url, std::int64_t calls, std::int64_t per_call) {
  const std::string schema = schema_name();
  { PostgresEventStore create(url, in_schema(schema)); }  // same tables and triggers
  RawPg raw(url, schema);
  std::int64_t warm = 0;
  for (auto& b : batches(kWarmUp, 1)) warm = raw.append("warm-up", warm, b);
  auto work = batches(calls, per_call);
  const auto start = std::chrono::steady_clock::now();
  std::int64_t version = 0;
  for (auto& b : work) version = raw.append("account-1", version, b);
  return static_cast<double>(calls * per_call) / seconds_since(start);
}

// A store holding `events` events: the read target's stream gets every
// other event, so read_stream and read_all both skip nothing and read
// different rows.
std::string filled_schema(const std::string& url, std::int64_t events) {
  const std::string schema = schema_name();
  PostgresEventStore store(url, in_schema(schema));
  for (std::int64_t done = 0; done < events; done += 200) {
    std::vector<StreamAppend> parts(2);
    parts[0].stream_id = "account-1";
    parts[1].stream_id = "account-2";
    for (std::int64_t i = done; i < std::min(events, done + 200); ++i) {
      parts[static_cast<std::size_t>(i % 2)].events.push_back(deposit_data(i));
    }
    store.append(std::move(parts));
  }
  // Statistics, as autovacuum keeps them on a live store: without them the
  // planner reads a stream page by sorting all its remaining rows.
  RawPg(url, schema).plain("ANALYZE");
  return schema;
}

double annals_read(const std::string& url, const std::string& schema, bool all) {
  PostgresEventStore store(url, in_schema(schema));
  const auto start = std::chrono::steady_clock::now();
  std::int64_t n = 0, check = 0;
  if (all) {
    for (const auto& e : store.read_all()) check += e.version, ++n;
  } else {
    for (const auto& e : store.read_stream("account-1")) check += e.version, ++n;
  }
  const double s = seconds_since(start);
  if (check == 0) throw std::runtime_error("read nothing");
  return static_cast<double>(n) / s;
}

double baseline_read(const std::string& url, const std::string& schema, bool all) {
  RawPg raw(url, schema);
  constexpr std::int64_t kPage = 256;  // PostgresStoreOptions::read_page_size's default
  const auto start = std::chrono::steady_clock::now();
  std::int64_t n = 0, check = 0, next = 1;
  for (;;) {
    auto r = all ? raw.run("read_all", Args().i8(next).i8(kPage))
                 : raw.run("read_stream", Args().bytes("account-1").i8(next).i8(kPage));
    const int rows = PQntuples(r.get());
    std::vector<RecordedEvent> page;
    page.reserve(static_cast<std::size_t>(rows));
    for (int i = 0; i < rows; ++i) page.push_back(RawPg::event_at(r.get(), i));
    for (const auto& e : page) check += e.version, ++n;
    if (rows > 0) next = (all ? page.back().position : page.back().version) + 1;
    if (rows < kPage) break;
  }
  const double s = seconds_since(start);
  if (check == 0) throw std::runtime_error("read nothing");
  return static_cast<double>(n) / s;
}

// `threads` appenders, one event per append, sharing one store object (whose
// group commit then gathers their appends) or each with its own.
enum class Stores { shared, separate };
double annals_appenders(const std::string& url, int threads, std::int64_t per_thread,
                        Stores kind = Stores::shared) {
  const std::string schema = schema_name();
  std::vector<std::unique_ptr<PostgresEventStore>> stores;
  const int store_count = kind == Stores::shared ? 1 : threads;
  for (int t = 0; t < store_count; ++t) {
    stores.push_back(std::make_unique<PostgresEventStore>(url, in_schema(schema)));
    for (auto& b : batches(kWarmUp / store_count + 1, 1)) stores.back()->append("warm-up", ExpectedVersion::any(), b);
  }
  std::vector<std::vector<std::vector<EventData>>> work;
  for (int t = 0; t < threads; ++t) work.push_back(batches(per_thread, 1));
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ++ready;
      while (!go) std::this_thread::yield();
      std::int64_t version = 0;
      const std::string stream = "account-" + std::to_string(t);
      for (auto& b : work[static_cast<std::size_t>(t)]) {
        version = stores[static_cast<std::size_t>(t) % stores.size()]
                      ->append(stream, ExpectedVersion::exactly(version), std::move(b))
                      .stream_version;
      }
    });
  }
  while (ready < threads) std::this_thread::yield();
  const auto start = std::chrono::steady_clock::now();
  go = true;
  for (auto& th : pool) th.join();
  return static_cast<double>(threads * per_thread) / seconds_since(start);
}

struct Measured {
  std::string name;
  double rate;
};

}  // namespace
}  // namespace annals::bench

int main(int argc, char** argv) {
  using namespace annals::bench;
  std::string size = "full", out_path;
  int reps = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--size=", 0) == 0 && (arg.substr(7) == "tiny" || arg.substr(7) == "quick" ||
                                         arg.substr(7) == "full")) {
      size = arg.substr(7);
    } else if (arg.rfind("--reps=", 0) == 0 && std::atoi(arg.c_str() + 7) >= 1) {
      reps = std::atoi(arg.c_str() + 7);
    } else if (arg.rfind("--out=", 0) == 0 && arg.size() > 6) {
      out_path = arg.substr(6);
    } else {
      std::cerr << "usage: annals_bench_postgres [--size=tiny|quick|full] [--reps=N>0] [--out=FILE]\n";
      return 2;
    }
  }
  try {
    const PgSizes sizes = pg_sizes(size);
    const std::string given = annals::testing::PostgresServer::url_from_env("ANNALS_BENCH_PG_URL");
    // The server as a production one would run: fsync on (the default);
    // ANNALS_BENCH_PG_SETTINGS replaces the extra "-c name=value" settings.
    const char* settings = std::getenv("ANNALS_BENCH_PG_SETTINGS");
    annals::testing::PostgresServer server(given,
                                           settings != nullptr ? settings : "-c fsync=on");
    const std::string& url = server.url();
    std::vector<Measured> rows;
    auto side = [&](const std::string& name, const std::function<double()>& run) {
      const double rate = run();
      rows.push_back({name, rate});
      std::fprintf(stderr, "%-34s %12.0f events/s\n", name.c_str(), rate);
    };
    const std::string read_schema = filled_schema(url, sizes.read_events);
    for (int rep = 1; rep <= reps; ++rep) {
      // Odd repetitions run annals first, even ones the baseline first.
      auto pair = [&](const std::string& kase, const std::function<double()>& annals,
                      const std::function<double()>& baseline) {
        if (rep % 2 == 1) {
          side("annals/" + kase, annals);
          side("baseline/" + kase, baseline);
        } else {
          side("baseline/" + kase, baseline);
          side("annals/" + kase, annals);
        }
      };
      pair("pg_append_1", [&] { return annals_append(url, sizes.append_1, 1); },
           [&] { return baseline_append(url, sizes.append_1, 1); });
      pair("pg_append_batch_100", [&] { return annals_append(url, sizes.batch_100, 100); },
           [&] { return baseline_append(url, sizes.batch_100, 100); });
      pair("pg_read_stream", [&] { return annals_read(url, read_schema, false); },
           [&] { return baseline_read(url, read_schema, false); });
      pair("pg_read_all", [&] { return annals_read(url, read_schema, true); },
           [&] { return baseline_read(url, read_schema, true); });
      pair("pg_8_appenders", [&] { return annals_appenders(url, 8, sizes.per_appender); },
           [&] { return annals_appenders(url, 1, 8 * sizes.per_appender); });
      pair("pg_8_separate_stores",
           [&] { return annals_appenders(url, 8, sizes.per_appender, Stores::separate); },
           [&] { return annals_appenders(url, 1, 8 * sizes.per_appender); });
    }
    if (!out_path.empty()) {
      std::ofstream out(out_path);
      out << "{\"context\": {\"program\": \"annals_bench_postgres\", \"size\": \"" << size
          << "\"},\n \"benchmarks\": [\n";
      for (std::size_t i = 0; i < rows.size(); ++i) {
        out << "  {\"name\": \"" << rows[i].name << "\", \"items_per_second\": " << rows[i].rate
            << "}" << (i + 1 < rows.size() ? "," : "") << "\n";
      }
      out << "]}\n";
      if (!out) throw std::runtime_error("cannot write " + out_path);
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "annals_bench_postgres: " << e.what() << "\n";
    return 1;
  }
}
