// `annals check NAME`: the tool has no projection code, so it records a check
// request in the read model (annals/projections/check_request.hpp) and waits
// for the projection's runner, in whichever process runs it, to record the
// report; or, with --last, prints the report recorded last.

#include <chrono>
#include <iostream>
#include <thread>

#include "annals/core/error.hpp"
#include "annals/projections/check_request.hpp"
#include "annals/projections/sqlite_read_model.hpp"
#include "commands.hpp"

namespace annals::tool {

namespace {

// The projections' names and states in the read model, read without writing
// it (an unknown name must not leave tables behind).
std::vector<std::pair<std::string, std::string>> projections_in(const CommandReadModel& model) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const CheckpointRecord& record : checkpoint_records_in(model)) {
    out.emplace_back(record.name, std::string(to_string(record.state)));
  }
  return out;
}

std::string value_text(const Json& v) {
  if (v.is_null()) return "NULL";
  if (v.is_string()) return printable(v.get<std::string>());
  return v.dump();
}

// The report in words; returns its exit code.
int print_report(const Json& r, const CheckCommand& c, Io& io) {
  if (r.contains("error")) {
    throw ToolError(kExitFailure, "the check of '" + c.name + "' failed: " +
                                      r.at("error").get<std::string>());
  }
  const bool equal = r.at("equal").get<bool>();
  if (c.json) {
    io.out << r.dump() << '\n';
    return equal ? kExitOk : kExitIntegrity;
  }
  io.out << "check of '" << printable(c.name) << "' at position " << r.at("checkpoint") << ": "
         << (equal ? "ok" : "DIFFERS") << " (" << r.at("live_rows") << " live rows, "
         << r.at("replay_rows") << " replayed; " << r.at("only_in_live") << " only in live, "
         << r.at("only_in_replay") << " only in replay, " << r.at("differing") << " differing)\n";
  for (const auto& s : r.at("schema_differences")) io.out << "  " << value_text(s) << '\n';
  for (const auto& d : r.at("samples")) {
    const bool live = !d.at("live").is_null();
    const Json& row = live ? d.at("live") : d.at("replay");
    io.out << "  " << value_text(d.at("table")) << ' ' << d.at("kind").get<std::string>() << ':';
    const Json& columns = d.at("columns");
    for (std::size_t i = 0; i < columns.size() && i < row.size(); ++i) {
      io.out << ' ' << value_text(columns[i]) << '=' << value_text(row[i]);
      if (live && !d.at("replay").is_null() && d.at("replay")[i] != row[i]) {
        io.out << " (replay: " << value_text(d.at("replay")[i]) << ')';
      }
    }
    io.out << '\n';
  }
  for (const auto& f : r.at("replay_failures")) {
    io.out << "  the replay could not apply position " << f.at("position") << ": "
           << value_text(f.at("message")) << '\n';
  }
  return equal ? kExitOk : kExitIntegrity;
}

}  // namespace

int run_check(const CheckCommand& c, Io& io) {
  using Clock = std::chrono::steady_clock;
  if (c.poll_ms < 1) throw ToolError(kExitUsage, "--poll-interval must be at least 1 ms");
  const auto store = open_store(c.db);  // the store must be usable
  const auto found = find_read_model(c.db, c.read_model);
  const auto rows = projections_in(found);
  std::string state;
  std::string known;
  for (const auto& [name, s] : rows) {
    if (name == c.name) state = s;
    known += (known.empty() ? "" : ", ") + name;
  }
  if (state.empty()) {
    throw ToolError(kExitFailure,
                    "no projection named '" + c.name + "' in " + found.name +
                        (known.empty() ? " (it has none)" : " (it has: " + known + ")"));
  }
  if (c.last) {
    // Only a look. A PostgreSQL model looks through its read-only
    // connection; an SQLite file is opened as for a request, minus the
    // writability check, as it always was.
    std::unique_ptr<ReadModel> opened;
    if (!found.looking) {
      SqliteReadModelOptions options;
      options.create_if_missing = false;
      try {
        opened = std::make_unique<SqliteReadModel>(found.location, options);
      } catch (const StorageError& e) {
        throw ToolError(kExitUnusable, e.what());
      }
    }
    const auto record = check_record(found.looking ? *found.looking : *opened, c.name);
    if (!record || !record->checked_at) {
      throw ToolError(kExitFailure, "no check of '" + c.name + "' has been recorded yet" +
                                        (record ? " (one is pending)" : ""));
    }
    return print_report(record->result, c, io);
  }
  const auto model = open_for_requests(found);
  const std::int64_t at = request_check(*model, c.name);
  io.err << "check of '" << printable(c.name) << "' requested in " << found.name << '\n';
  if (state == "stopped") {
    throw ToolError(kExitFailure,
                    "not waiting: no runner of '" + printable(c.name) +
                        "' is running (its state is \"stopped\"); the check is recorded and runs "
                        "when a program next runs the projection (the bank example runs its "
                        "projections at every bank command); then `annals check " +
                        printable(c.name) + " --last` prints its report");
  }
  const auto started = Clock::now();
  for (;;) {
    const auto record = check_record(*model, c.name);
    if (record && record->requested_at >= at && record->checked_at) {
      return print_report(record->result, c, io);
    }
    if (c.timeout_seconds > 0 &&
        Clock::now() - started >= std::chrono::duration<double>(c.timeout_seconds)) {
      throw ToolError(kExitFailure, "timed out waiting for the check of '" + c.name +
                                        "' (the request is still pending: is a runner of it "
                                        "running?)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(c.poll_ms));
  }
}

}  // namespace annals::tool
