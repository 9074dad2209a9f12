// The child processes of the multi-process PostgreSQL tests, started with
// fork/exec (postgres_worker.hpp), so that each holds only its own
// connections and threads. One mode per role:
//
//   postgres_worker write   URL SCHEMA ACKS PROCESS APPENDS
//     4 threads, each with its own store, append APPENDS batches of 1 to 3
//     events to streams of their own and to one shared stream (any()); each
//     acknowledged event is one line "<event id> <position>" in ACKS.
//   postgres_worker follow  URL SCHEMA OUT DONE
//     Reads read_all() from its checkpoint again and again, with small pages,
//     writing one line "<position> <event id>" per event read to OUT, until
//     the file DONE exists, holds the final head position, and the checkpoint
//     has reached it.
//   postgres_worker contend URL SCHEMA ACKS PROCESS APPENDS
//     4 threads share one store and append APPENDS events each to a few shared
//     streams with exactly(version) and a retry on WrongExpectedVersion (half
//     re-read the version, half take it from the error); each acknowledged
//     event is one line "<event id> <stream> <version>" in ACKS. Any error
//     other than WrongExpectedVersion is printed, and makes the exit code 5.
//
// Exit code 0 when the role was played out, 2 for bad arguments, 5 for
// errors a caller saw, 10/11 for an exception that ended the process.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "annals/core/error.hpp"
#include "annals/core/event_id.hpp"
#include "annals/store/postgres_event_store.hpp"
#include "process_helpers.hpp"

namespace {

using namespace annals;

constexpr int kThreads = 4;

PostgresStoreOptions in_schema(const std::string& schema, std::size_t page_size) {
  PostgresStoreOptions options;
  options.schema = schema;
  options.read_page_size = page_size;
  return options;
}

EventData event(const std::string& id, int i) {
  EventData e;
  e.event_id = id;
  e.type = "test.Ordered";
  e.payload = R"({"i":)" + std::to_string(i) + "}";
  return e;
}

int write(const std::string& url, const std::string& schema, const std::string& acks_path,
          int process, int appends) {
  annals::testing::AckLog acks(acks_path);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // One store (one connection pool) per thread: four connections per
      // process, meeting only in the database.
      PostgresEventStore store(url, in_schema(schema, 16));
      std::mt19937 rng(static_cast<unsigned>(process * kThreads + t));
      const std::string own = "w" + std::to_string(process) + "-" + std::to_string(t);
      for (int i = 0; i < appends; ++i) {
        std::vector<EventData> batch;
        const int n = 1 + static_cast<int>(rng() % 3);
        for (int j = 0; j < n; ++j) batch.push_back(event(new_event_id(), i));
        const std::string stream = i % 4 == 0 ? "shared" : own;
        std::vector<std::string> ids;
        for (const auto& e : batch) ids.push_back(e.event_id);
        const auto r = store.append(stream, ExpectedVersion::any(), std::move(batch));
        std::vector<std::string> lines;
        for (std::size_t j = 0; j < ids.size(); ++j) {
          lines.push_back(ids[j] + " " + std::to_string(r.first_position + static_cast<std::int64_t>(j)));
        }
        acks.ack(lines);
      }
    });
  }
  for (auto& th : threads) th.join();
  return 0;
}

std::int64_t done_head(const std::filesystem::path& done) {
  std::ifstream in(done);
  std::int64_t head = -1;
  in >> head;
  return in ? head : -1;
}

int follow(const std::string& url, const std::string& schema, const std::string& out_path,
           const std::filesystem::path& done) {
  // Pages of 7 events: most reads end mid-page and continue on another
  // statement, where an event committing out of order would be skipped.
  PostgresEventStore store(url, in_schema(schema, 7));
  std::FILE* out = std::fopen(out_path.c_str(), "w");
  if (out == nullptr) return 3;
  std::int64_t checkpoint = 0;
  for (;;) {
    const std::int64_t head = done_head(done);  // read before the pass, so it is final
    for (const auto& e : store.read_all(checkpoint + 1)) {
      std::fprintf(out, "%lld %s\n", static_cast<long long>(e.position), e.event_id.c_str());
      checkpoint = e.position;
    }
    if (head >= 0 && checkpoint >= head) break;
  }
  return std::fclose(out) == 0 ? 0 : 3;
}

int contend(const std::string& url, const std::string& schema, const std::string& acks_path,
            int process, int appends) {
  annals::testing::AckLog acks(acks_path);
  PostgresEventStore store(url, in_schema(schema, 16));
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < appends; ++i) {
        const std::string stream = "counter-" + std::to_string((i + t) % 3);
        const std::string id = new_event_id();
        try {
          std::int64_t version = store.stream_version(stream);
          for (;;) {
            try {
              const auto r =
                  store.append(stream, ExpectedVersion::exactly(version), {event(id, i)});
              acks.ack({id + " " + stream + " " + std::to_string(r.stream_version)});
              break;
            } catch (const WrongExpectedVersion& e) {
              // Half the callers re-read the stream, half trust the error.
              version = (i + process) % 2 == 0 ? store.stream_version(stream) : e.actual_version();
            }
          }
        } catch (const std::exception& e) {
          ++errors;
          std::fprintf(stderr, "contend process %d thread %d: %s\n", process, t, e.what());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  return errors.load() == 0 ? 0 : 5;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.size() == 6 && args[0] == "write") {
      return write(args[1], args[2], args[3], std::stoi(args[4]), std::stoi(args[5]));
    }
    if (args.size() == 5 && args[0] == "follow") return follow(args[1], args[2], args[3], args[4]);
    if (args.size() == 6 && args[0] == "contend") {
      return contend(args[1], args[2], args[3], std::stoi(args[4]), std::stoi(args[5]));
    }
  } catch (const StorageError& e) {
    std::fprintf(stderr, "postgres_worker %s: %s\n", args[0].c_str(), e.what());
    return 10;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "postgres_worker %s: %s\n", args[0].c_str(), e.what());
    return 11;
  }
  std::fprintf(stderr,
               "usage: postgres_worker write|contend URL SCHEMA ACKS PROCESS APPENDS\n"
               "       postgres_worker follow URL SCHEMA OUT DONE\n");
  return 2;
}
