#include "annals/store/postgres_import.hpp"

#include <libpq-fe.h>

#include <memory>
#include <vector>

#include "annals/core/error.hpp"
#include "annals/core/event_hash.hpp"
#include "export_input.hpp"

namespace annals {

namespace {

struct ConnDeleter {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

std::string line_at(std::int64_t line_number) { return "line " + std::to_string(line_number); }

// One statement with text parameters, bytea ones (`binary`) sent as bytes;
// text results. Throws StorageError naming `what`.
Result run(PGconn* c, const char* what, const char* sql, const std::vector<std::string>& params = {},
           const std::vector<bool>& binary = {}) {
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  for (std::size_t i = 0; i < params.size(); ++i) {
    values.push_back(params[i].data());
    lengths.push_back(static_cast<int>(params[i].size()));
    formats.push_back(i < binary.size() && binary[i] ? 1 : 0);
  }
  Result r(PQexecParams(c, sql, static_cast<int>(params.size()), nullptr, values.data(),
                        lengths.data(), formats.data(), 0));
  const auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    std::string msg = r ? PQresultErrorMessage(r.get()) : PQerrorMessage(c);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    throw StorageError(std::string("PostgreSQL import: ") + what + ": " + msg);
  }
  return r;
}

std::int64_t int_at(const Result& r, int row = 0, int col = 0) {
  return std::stoll(PQgetvalue(r.get(), row, col));
}

}  // namespace

std::int64_t import_events(const std::string& connection, const PostgresStoreOptions& options,
                           std::istream& in, const ImportOptions& import_options) {
  {
    // Creates the tables if missing; refuses another layout or a bad schema name.
    PostgresEventStore check(connection, options);
  }
  const std::string search_path = "-c search_path=\"" + options.schema + "\"";
  const char* keys[] = {"dbname", "options", "application_name", nullptr};
  const char* values[] = {connection.c_str(), search_path.c_str(), "annals import", nullptr};
  std::unique_ptr<PGconn, ConnDeleter> conn(PQconnectdbParams(keys, values, 1));
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
    std::string msg = conn ? PQerrorMessage(conn.get()) : "out of memory";
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    throw StorageError("PostgreSQL import: cannot connect: " + msg);
  }
  PGconn* c = conn.get();
  const std::string name = "schema '" + options.schema + "'";
  // Closing the connection without COMMIT rolls everything back.
  run(c, "begin", "BEGIN");
  const std::int64_t head =
      int_at(run(c, "lock the head row", "SELECT position FROM annals_head WHERE id = 1 FOR UPDATE"));
  const std::int64_t stored = int_at(run(c, "count the events", "SELECT count(*) FROM events"));
  if (head != 0 || stored != 0) {
    throw InvalidArgument("store in " + name + " is not empty (head position " +
                          std::to_string(head) + "): import needs an empty store");
  }
  std::int64_t imported = 0;
  std::int64_t line_number = 0;
  EventHash previous{};
  std::string line;
  while (detail::read_line(in, line, import_options.limits.max_line_bytes, line_number + 1)) {
    ++line_number;
    if (line_number == 1 && std::string_view(line).starts_with(detail::kExportHeaderStart)) {
      run(c, "adopt the exported store id",
          "UPDATE annals_meta SET value = $1 WHERE key = 'store_id'",
          {detail::parse_export_header(line)});
      continue;
    }
    const RecordedEvent e = parse_export_line(line, line_number, import_options.limits);
    const std::string at = line_at(line_number);
    if (e.position != imported + 1) {
      throw InvalidArgument(at + ": field 'position' is " + std::to_string(e.position) +
                            ", expected " + std::to_string(imported + 1) +
                            " (an export lists positions 1, 2, 3, ... in order)");
    }
    const Result v = run(c, "read a stream version",
                         "SELECT coalesce(max(version), 0) FROM streams WHERE stream_id = $1",
                         {e.stream_id});
    const std::int64_t stream_version = int_at(v);
    if (e.version != stream_version + 1) {
      throw InvalidArgument(at + ": field 'version' is " + std::to_string(e.version) +
                            ", expected " + std::to_string(stream_version + 1) + " for stream '" +
                            e.stream_id + "'");
    }
    const EventHash computed = chain_hash(previous, e);
    if (computed != e.hash) {
      throw IntegrityError(at + ": the hash of the event at position " +
                               std::to_string(e.position) + " does not match: exported " +
                               to_hex(e.hash) + ", computed " + to_hex(computed),
                           e.position);
    }
    if (PQntuples(run(c, "look up an event id", "SELECT 1 FROM events WHERE event_id = $1",
                      {e.event_id})
                      .get()) != 0) {
      throw InvalidArgument(at + ": field 'event_id' " + e.event_id +
                            " is already used by an earlier line");
    }
    const std::string hash(reinterpret_cast<const char*>(e.hash.data()), e.hash.size());
    run(c, "insert an event",
        "INSERT INTO events (position, stream_id, version, event_id, type, schema_version, "
        "payload, metadata, recorded_at, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        {std::to_string(e.position), e.stream_id, std::to_string(e.version), e.event_id, e.type,
         std::to_string(e.schema_version), e.payload, e.metadata,
         std::to_string(to_micros(e.recorded_at)), hash},
        {false, false, false, false, false, false, true, true, false, true});
    run(c, "update a stream version",
        "INSERT INTO streams (stream_id, version) VALUES ($1, $2) "
        "ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version",
        {e.stream_id, std::to_string(e.version)});
    previous = e.hash;
    ++imported;
    if (import_options.progress && imported % 1024 == 0) import_options.progress(imported, 0);
  }
  if (in.bad()) {
    throw StorageError("cannot read the import input after line " + std::to_string(line_number));
  }
  run(c, "move the head", "UPDATE annals_head SET position = $1 WHERE id = 1",
      {std::to_string(imported)});
  run(c, "commit", "COMMIT");
  if (import_options.progress) import_options.progress(imported, 0);
  return imported;
}

}  // namespace annals
