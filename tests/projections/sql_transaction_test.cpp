// How statement text binds its parameters through SqlTransaction (ADR 0010):
// $1, $2, ... by number in any order, as PostgreSQL does, and SQLite's ?N.

#include <gtest/gtest.h>

#include "annals/projections/sqlite_read_model.hpp"
#include "annals/store/sql_transaction.hpp"
#include "store/store_fixtures.hpp"

namespace annals {
namespace {

using testing::TempDir;

std::vector<SqlRow> query_in_write(SqliteReadModel& model, std::string_view sql,
                                   const std::vector<SqlValue>& params) {
  std::vector<SqlRow> rows;
  model.write([&](SqlTransaction& tx) { rows = tx.query(sql, params); });
  return rows;
}

TEST(SqlTransaction, DollarPlaceholdersBindByTheirNumberInWhateverOrderTheyAppear) {
  TempDir dir;
  SqliteReadModel model(dir / "model.db");
  // SQLite alone would number $2 as parameter 1 here (first seen).
  EXPECT_EQ(query_in_write(model, "SELECT $2, $1, $2", {10, "twenty"}),
            (std::vector<SqlRow>{{SqlValue("twenty"), SqlValue(10), SqlValue("twenty")}}));
}

TEST(SqlTransaction, DollarPlaceholdersBindInInsertsAndWheres) {
  TempDir dir;
  SqliteReadModel model(dir / "model.db");
  model.write([](SqlTransaction& tx) {
    tx.exec_script("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)");
    tx.exec("INSERT INTO t (v, k) VALUES ($2, $1)", {"a", 1});
    tx.exec("INSERT INTO t (v, k) VALUES ($2, $1)", {"b", 2});
  });
  EXPECT_EQ(model.query_int("SELECT v FROM t WHERE k = $1", {"b"}), 2);
  EXPECT_EQ(model.query("SELECT k FROM t WHERE v >= $2 AND k <> $1 ORDER BY k", {"z", 1}),
            (std::vector<SqlRow>{{SqlValue("a")}, {SqlValue("b")}}));
}

TEST(SqlTransaction, QuestionMarkPlaceholdersStillBindByNumberOnSqlite) {
  TempDir dir;
  SqliteReadModel model(dir / "model.db");
  EXPECT_EQ(query_in_write(model, "SELECT ?2, ?1", {1, 2}),
            (std::vector<SqlRow>{{SqlValue(2), SqlValue(1)}}));
}

}  // namespace
}  // namespace annals
