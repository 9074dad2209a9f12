// Check requests (check_request.hpp): one row per projection in
// projection_checks, created with the other bookkeeping tables
// (projection_tables.cpp); the runner side is serve_check_request() in
// projection_runner.cpp.

#include "annals/projections/check_request.hpp"

#include "annals/core/error.hpp"
#include "projection_tables.hpp"
#include "sql_connection.hpp"

namespace annals {

namespace {

Json value_json(const SqlValue& v) {
  if (v.is_null()) return nullptr;
  if (v.is_int()) return v.as_int();
  if (v.is_real()) return v.as_real();
  return v.as_text();
}

Json row_json(const SqlRow& row) {
  Json out = Json::array();
  for (const auto& v : row) out.push_back(value_json(v));
  return out;
}

}  // namespace

std::int64_t request_check(ReadModel& read_model, const std::string& name) {
  std::int64_t at = 0;
  bool known = false;
  read_model.write([&](SqlTransaction& tx) {
    known = tx.query_int("SELECT count(*) FROM projection_checkpoints WHERE name = $1", {name})
                .value_or(0) > 0;
    if (!known) return;
    const std::int64_t previous =
        tx.query_int("SELECT requested_at FROM projection_checks WHERE name = $1", {name})
            .value_or(0);
    at = std::max(to_micros(read_model.clock().now()), previous + 1);
    tx.exec(
        "INSERT INTO projection_checks (name, requested_at, checked_at, result) "
        "VALUES ($1, $2, NULL, NULL) ON CONFLICT(name) DO UPDATE SET "
        "requested_at = excluded.requested_at, checked_at = NULL, result = NULL",
        {name, at});
  });
  if (!known) {
    throw InvalidArgument(read_model.describe() + " has no projection named '" + name +
                          "' (no checkpoint row)");
  }
  return at;
}

std::optional<CheckRecord> check_record(const ReadModel& read_model, const std::string& name) {
  const auto rows = read_model.query(
      "SELECT requested_at, checked_at, result FROM projection_checks WHERE name = $1", {name});
  if (rows.empty()) return std::nullopt;
  CheckRecord r;
  r.requested_at = rows[0][0].as_int();
  if (!rows[0][1].is_null()) r.checked_at = rows[0][1].as_int();
  if (rows[0][2].is_text()) r.result = Json::parse(rows[0][2].as_text(), nullptr, false);
  return r;
}

Json check_report_json(const CheckReport& r) {
  Json samples = Json::array();
  for (const auto& d : r.samples) {
    samples.push_back(Json{{"table", d.table},
                           {"kind", to_string(d.kind)},
                           {"columns", d.columns},
                           {"live", d.live.empty() ? Json() : row_json(d.live)},
                           {"replay", d.replay.empty() ? Json() : row_json(d.replay)}});
  }
  Json failures = Json::array();
  for (const auto& f : r.replay_failures) {
    failures.push_back(Json{{"position", f.position}, {"message", f.message}});
  }
  return Json{{"projection", r.projection},
              {"checkpoint", r.checkpoint},
              {"equal", r.equal()},
              {"tables", r.tables},
              {"live_rows", r.live_rows},
              {"replay_rows", r.replay_rows},
              {"only_in_live", r.only_in_live},
              {"only_in_replay", r.only_in_replay},
              {"differing", r.differing},
              {"schema_differences", r.schema_differences},
              {"replay_failures", failures},
              {"samples", samples}};
}

}  // namespace annals
