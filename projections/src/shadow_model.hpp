#pragma once
// Shadow tables: a projection replayed into an empty read model beside the
// live one (a temporary SQLite file, or a temporary PostgreSQL schema), then
// compared with the live tables (check_projection) or put in their place in
// one transaction of the live model (ProjectionRunner::rebuild).
//
// The projection's tables are the tables its setup() creates in the empty
// shadow, the database's own and the read model's bookkeeping tables left
// out. Both the comparison and the swap run in a transaction of the live
// model in which the shadow's tables can be reached too (SQLite: the shadow
// file attached as "shadow"; PostgreSQL: another schema of the database).

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "annals/projections/projection_check.hpp"
#include "annals/projections/read_model.hpp"
#include "sql_connection.hpp"

namespace annals::detail {

// One replay's shadow, made by ReadModel::open_shadow(); removed (file or
// schema) when destroyed.
class ShadowModel {
 public:
  virtual ~ShadowModel() = default;
  // The read model the replay writes to; it holds only the bookkeeping tables
  // when opened.
  virtual ReadModel& model() = 0;
  // Runs `fn` in one transaction of the live model (a write transaction when
  // `write`), in which table T of the live model is live_schema().T and of
  // the shadow shadow_schema().T.
  virtual void with_live(bool write, const std::function<void(SqlTransaction&)>& fn) = 0;
  // Unquoted schema names, as the database's catalog has them.
  virtual std::string live_schema() const = 0;
  virtual std::string shadow_schema() const = 0;
  // Replaces each live table by the shadow's: definition, rows, indexes and
  // triggers. Runs inside with_live(true, ...).
  virtual void replace_tables(SqlTransaction& tx, const std::vector<std::string>& tables) = 0;
};

// What rebuild and check reach a read model's shadow through.
struct ReadModelAccess {
  static std::unique_ptr<ShadowModel> open_shadow(const ReadModel& model) {
    return model.open_shadow();
  }
};

// A private temporary directory beside `near` (so a large shadow lands on the
// read model's disk), removed with its files when destroyed. A process killed
// meanwhile leaves a directory ".<file>.shadow-XXXXXX" behind, safe to delete.
class ShadowDir {
 public:
  // Throws: StorageError naming the directory when it cannot be created.
  explicit ShadowDir(const std::filesystem::path& near);
  ~ShadowDir();
  ShadowDir(const ShadowDir&) = delete;
  ShadowDir& operator=(const ShadowDir&) = delete;
  std::filesystem::path file() const { return dir_ / "shadow.db"; }

 private:
  std::filesystem::path dir_;
};

// How long the comparison and swap connections wait for another writer.
inline constexpr std::chrono::milliseconds kShadowBusyTimeout{30'000};

// "name" with its quotes doubled: an SQL identifier.
std::string quote_identifier(const std::string& name);

// The tables of `tx`'s database (SQLite: main; PostgreSQL: the current
// schema) that a projection made, bookkeeping left out, in name order.
std::vector<std::string> projection_tables(SqlTransaction& tx);

// A shadow in a temporary SQLite file beside the live read model at `live`.
// Throws: StorageError.
std::unique_ptr<ShadowModel> open_sqlite_shadow(const std::filesystem::path& live);

// A connection on the live read model at `live`, with `shadow` attached as
// "shadow". Throws: StorageError.
std::unique_ptr<SqlConnection> open_live_with_shadow(const std::filesystem::path& live,
                                                     const std::filesystem::path& shadow);

// Compares the live with the shadow's version of each table, adding counts,
// samples (up to max_samples in all) and schema differences to `report`.
// Runs inside shadow.with_live().
void compare_tables(SqlTransaction& tx, const ShadowModel& shadow,
                    const std::vector<std::string>& tables, std::size_t max_samples,
                    CheckReport& report);

}  // namespace annals::detail
