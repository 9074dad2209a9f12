// Shadow tables (see shadow_model.hpp). The comparison is SQL run by the
// database over both sides, so neither is loaded into memory: counts come
// from count(*) over the differing rows, samples from the same query with
// LIMIT. The SQL is written once for SQLite and PostgreSQL; where they differ
// (catalogs, "IS" against "IS NOT DISTINCT FROM") it asks tx.dialect().

#include "shadow_model.hpp"

#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "annals/projections/sqlite_read_model.hpp"

namespace annals::detail {

namespace {

struct Column {
  std::string name;
  int pk = 0;  // position in the primary key, 0 when not part of it
};

bool postgres(const SqlTransaction& tx) { return tx.dialect() == SqlDialect::postgresql; }

std::vector<Column> columns_of(SqlTransaction& tx, const std::string& schema,
                               const std::string& table) {
  // PostgreSQL: the columns in order, each with its place in the primary key.
  const char* sql =
      postgres(tx) ? "SELECT a.attname::text, COALESCE((SELECT k.n FROM pg_catalog.pg_index i, "
                     "unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) "
                     "WHERE i.indrelid = c.oid AND i.indisprimary AND k.attnum = a.attnum), 0) "
                     "FROM pg_catalog.pg_attribute a "
                     "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
                     "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                     "WHERE c.relname = $1 AND n.nspname = $2 AND a.attnum > 0 "
                     "AND NOT a.attisdropped ORDER BY a.attnum"
                   : "SELECT name, pk FROM pragma_table_info($1, $2) ORDER BY cid";
  std::vector<Column> out;
  for (const auto& row : tx.query(sql, {table, schema})) {
    out.push_back(Column{row[0].as_text(), static_cast<int>(row[1].as_int())});
  }
  return out;
}

// "schema".
std::string prefix(const std::string& schema) { return quote_identifier(schema) + "."; }

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

// "l.a, l.b" for prefix "l."
std::string column_list(const std::vector<Column>& columns, const std::string& prefix) {
  std::vector<std::string> parts;
  for (const auto& c : columns) parts.push_back(prefix + quote_identifier(c.name));
  return join(parts, ", ");
}

// "s.a IS l.a AND s.b IS l.b" over `columns` (NULL equals NULL). On
// PostgreSQL the values compare as text, so types without an equality
// operator (json, point, ...) compare too; key columns (`keys`: never NULL
// there) with "=", so the server can hash-join them instead of comparing
// every pair of rows.
std::string same(const SqlTransaction& tx, const std::vector<Column>& columns, bool keys = false) {
  std::vector<std::string> parts;
  for (const auto& c : columns) {
    const auto q = quote_identifier(c.name);
    if (!postgres(tx)) {
      parts.push_back("s." + q + " IS l." + q);
    } else if (keys) {
      parts.push_back("s." + q + "::text = l." + q + "::text");
    } else {
      parts.push_back("s." + q + "::text IS NOT DISTINCT FROM l." + q + "::text");
    }
  }
  return join(parts, " AND ");
}

// The columns of a whole-row comparison, as text on PostgreSQL (as same()
// compares them), each under its own name.
std::string grouping(const SqlTransaction& tx, const std::vector<Column>& columns) {
  std::vector<std::string> parts;
  for (const auto& c : columns) {
    const auto q = quote_identifier(c.name);
    parts.push_back(postgres(tx) ? q + "::text AS " + q : q);
  }
  return join(parts, ", ");
}

SqlRow slice(const SqlRow& row, std::size_t from, std::size_t n) {
  return SqlRow(row.begin() + static_cast<std::ptrdiff_t>(from),
                row.begin() + static_cast<std::ptrdiff_t>(from + n));
}

void compare_keyed(SqlTransaction& tx, const std::string& live_schema,
                   const std::string& shadow_schema, const std::string& table,
                   const std::vector<Column>& columns, std::size_t max_samples,
                   CheckReport& report) {
  std::vector<Column> key;
  for (const auto& c : columns) {
    if (c.pk > 0) key.push_back(c);
  }
  std::sort(key.begin(), key.end(), [](const Column& a, const Column& b) { return a.pk < b.pk; });
  std::vector<std::string> names;
  for (const auto& c : columns) names.push_back(c.name);
  const std::string t = quote_identifier(table);
  const auto room = [&] { return max_samples - std::min(max_samples, report.samples.size()); };

  // Keys on one side only.
  const auto one_side = [&](const std::string& here, const std::string& there,
                            RowDifference::Kind kind, std::int64_t& count) {
    const std::string rows = "SELECT " + column_list(columns, "l.") + " FROM " + here + t +
                             " AS l WHERE NOT EXISTS (SELECT 1 FROM " + there + t + " AS s WHERE " +
                             same(tx, key, true) + ")";
    const std::int64_t n =
        tx.query_int("SELECT count(*) FROM (" + rows + ") AS annals_rows").value_or(0);
    count += n;
    if (n == 0 || room() == 0) return;
    for (auto& row : tx.query(rows + " LIMIT " + std::to_string(room()))) {
      RowDifference d{table, kind, names, {}, {}};
      (kind == RowDifference::Kind::only_in_live ? d.live : d.replay) = std::move(row);
      report.samples.push_back(std::move(d));
    }
  };
  const std::string live = prefix(live_schema), shadow = prefix(shadow_schema);
  one_side(live, shadow, RowDifference::Kind::only_in_live, report.only_in_live);
  one_side(shadow, live, RowDifference::Kind::only_in_replay, report.only_in_replay);

  // Keys on both sides whose rows differ.
  const std::string rows = "SELECT " + column_list(columns, "l.") + ", " +
                           column_list(columns, "s.") + " FROM " + live + t + " AS l JOIN " +
                           shadow + t + " AS s ON " + same(tx, key, true) + " WHERE NOT (" +
                           same(tx, columns) + ")";
  const std::int64_t n =
      tx.query_int("SELECT count(*) FROM (" + rows + ") AS annals_rows").value_or(0);
  report.differing += n;
  if (n == 0 || room() == 0) return;
  for (const auto& row : tx.query(rows + " LIMIT " + std::to_string(room()))) {
    report.samples.push_back(RowDifference{table, RowDifference::Kind::differing, names,
                                           slice(row, 0, columns.size()),
                                           slice(row, columns.size(), columns.size())});
  }
}

// Without a primary key: whole rows as a multiset. d > 0: the live table holds
// the row d times more than the replay; d < 0: the replay -d times more.
void compare_multiset(SqlTransaction& tx, const std::string& live_schema,
                      const std::string& shadow_schema, const std::string& table,
                      const std::vector<Column>& columns, std::size_t max_samples,
                      CheckReport& report) {
  const std::string t = quote_identifier(table);
  const std::string cols = column_list(columns, "");
  const std::string values = grouping(tx, columns);  // what rows are compared by
  const std::string groups = "SELECT " + cols + ", sum(side) AS annals_d FROM (SELECT " + values +
                             ", 1 AS side FROM " + prefix(live_schema) + t + " UNION ALL SELECT " +
                             values + ", -1 FROM " + prefix(shadow_schema) + t +
                             ") AS annals_both GROUP BY " + cols + " HAVING sum(side) <> 0";
  const auto counts = tx.query(
      "SELECT coalesce(sum(CASE WHEN annals_d > 0 THEN annals_d END), 0), "
      "coalesce(sum(CASE WHEN annals_d < 0 THEN -annals_d END), 0) FROM (" +
      groups + ") AS annals_groups");
  report.only_in_live += counts[0][0].as_int();
  report.only_in_replay += counts[0][1].as_int();
  const std::size_t room = max_samples - std::min(max_samples, report.samples.size());
  if (room == 0 || (counts[0][0].as_int() == 0 && counts[0][1].as_int() == 0)) return;
  std::vector<std::string> names;
  for (const auto& c : columns) names.push_back(c.name);
  for (const auto& row : tx.query(groups + " LIMIT " + std::to_string(room))) {
    const bool live = row.back().as_int() > 0;
    RowDifference d{table,
                    live ? RowDifference::Kind::only_in_live : RowDifference::Kind::only_in_replay,
                    names,
                    {},
                    {}};
    (live ? d.live : d.replay) = slice(row, 0, columns.size());
    report.samples.push_back(std::move(d));
  }
}

}  // namespace

ShadowDir::ShadowDir(const std::filesystem::path& near) {
  const auto parent = near.has_parent_path() ? near.parent_path() : std::filesystem::path(".");
  std::string pattern = (parent / ("." + near.filename().string() + ".shadow-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    const int error = errno;
    throw StorageError("cannot create a shadow directory '" + pattern + "' beside read model '" +
                       near.string() + "': " + std::generic_category().message(error));
  }
  dir_ = pattern;
}

ShadowDir::~ShadowDir() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string quote_identifier(const std::string& name) {
  std::string out = "\"";
  for (const char c : name) {
    out += c;
    if (c == '"') out += '"';
  }
  return out + "\"";
}

std::vector<std::string> projection_tables(SqlTransaction& tx) {
  // The read model's own tables (projection_tables.cpp, consumer_group_tables.cpp).
  const std::string bookkeeping =
      "('projection_checkpoints', 'projection_parked_events', 'projection_checks', "
      "'projection_groups', 'projection_partitions', 'projection_group_members', "
      "'projection_partition_leases', 'projection_partition_writes')";
  const std::string sql =
      postgres(tx)
          ? "SELECT c.relname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind IN "
            "('r', 'p') AND NOT c.relispartition AND c.relname NOT IN " +
                bookkeeping + " ORDER BY c.relname COLLATE \"C\""
          : "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE "
            "'sqlite\\_%' ESCAPE '\\' AND name NOT IN " +
                bookkeeping + " ORDER BY name";
  std::vector<std::string> out;
  for (const auto& row : tx.query(sql)) out.push_back(row[0].as_text());
  return out;
}

std::unique_ptr<SqlConnection> open_live_with_shadow(const std::filesystem::path& live,
                                                     const std::filesystem::path& shadow) {
  try {
    auto conn = std::make_unique<SqlConnection>(live, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                                                kShadowBusyTimeout);
    conn->exec("ATTACH DATABASE $1 AS shadow", {shadow.string()});
    return conn;
  } catch (const SQLite::Exception& e) {
    throw storage_error(e, "opening read model '" + live.string() + "' with its shadow tables");
  }
}

void compare_tables(SqlTransaction& tx, const ShadowModel& shadow,
                    const std::vector<std::string>& tables, std::size_t max_samples,
                    CheckReport& report) {
  const std::string live_schema = shadow.live_schema(), shadow_schema = shadow.shadow_schema();
  for (const auto& table : tables) {
    const auto replay = columns_of(tx, shadow_schema, table);
    const auto live = columns_of(tx, live_schema, table);
    report.replay_rows +=
        tx.query_int("SELECT count(*) FROM " + prefix(shadow_schema) + quote_identifier(table))
            .value_or(0);
    if (live.empty()) {
      report.schema_differences.push_back("table '" + table +
                                          "' is missing from the live read model");
      continue;
    }
    report.live_rows +=
        tx.query_int("SELECT count(*) FROM " + prefix(live_schema) + quote_identifier(table))
            .value_or(0);
    std::vector<std::string> live_names, replay_names;
    for (const auto& c : live) live_names.push_back(c.name);
    for (const auto& c : replay) replay_names.push_back(c.name);
    if (live_names != replay_names) {
      report.schema_differences.push_back("table '" + table + "' has other columns (live: " +
                                          join(live_names, ", ") +
                                          "; replay: " + join(replay_names, ", ") + ")");
      continue;
    }
    const bool keyed = std::any_of(replay.begin(), replay.end(), [](const Column& c) { return c.pk > 0; });
    if (keyed) {
      compare_keyed(tx, live_schema, shadow_schema, table, replay, max_samples, report);
    } else {
      compare_multiset(tx, live_schema, shadow_schema, table, replay, max_samples, report);
    }
  }
}

namespace {

// The SQLite shadow: a read model in a temporary file beside the live one,
// attached as "shadow" to a connection of its own on the live file for the
// comparison and the swap.
class SqliteShadow final : public ShadowModel {
 public:
  explicit SqliteShadow(const std::filesystem::path& live)
      : live_(live), dir_(live), model_(dir_.file()) {}

  ReadModel& model() override { return model_; }
  std::string live_schema() const override { return "main"; }
  std::string shadow_schema() const override { return "shadow"; }

  void with_live(bool write, const std::function<void(SqlTransaction&)>& fn) override {
    auto conn = open_live_with_shadow(live_, dir_.file());
    if (write) {
      conn->begin_immediate();
    } else {
      conn->begin_deferred();
    }
    try {
      fn(*conn);
      conn->commit();
    } catch (...) {
      conn->rollback_quietly();
      throw;
    }
  }

  void replace_tables(SqlTransaction& tx, const std::vector<std::string>& tables) override {
    for (const auto& table : tables) {
      const std::string t = quote_identifier(table);
      const auto definition = tx.query_text(
          "SELECT sql FROM shadow.sqlite_master WHERE type = 'table' AND name = $1", {table});
      if (!definition) continue;
      tx.exec("DROP TABLE IF EXISTS main." + t);
      tx.exec(*definition);  // unqualified: creates it in main
      tx.exec("INSERT INTO main." + t + " SELECT * FROM shadow." + t);
      // Indexes after the rows (faster), triggers last (the copy fires none).
      for (const auto& row :
           tx.query("SELECT sql FROM shadow.sqlite_master WHERE tbl_name = $1 AND type IN "
                    "('index', 'trigger') AND sql IS NOT NULL ORDER BY type = 'trigger', name",
                    {table})) {
        tx.exec(row[0].as_text());
      }
    }
  }

 private:
  std::filesystem::path live_;
  ShadowDir dir_;
  SqliteReadModel model_;
};

}  // namespace

std::unique_ptr<ShadowModel> open_sqlite_shadow(const std::filesystem::path& live) {
  return std::make_unique<SqliteShadow>(live);
}

}  // namespace annals::detail
