#pragma once
// Shadow tables: a projection replayed into a temporary SQLite file beside its
// read model, then compared with the live tables (check_projection) or put in
// their place in one transaction (ProjectionRunner::rebuild).
//
// The projection's tables are the tables its setup() creates in the empty
// shadow file, SQLite's own and the runner's bookkeeping tables left out. Both
// the comparison and the swap run on a connection whose main database is the
// live read model with the shadow file attached as "shadow".

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "annals/projections/projection_check.hpp"
#include "sql_connection.hpp"

namespace annals::detail {

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

// The tables of `tx`'s main database that a projection made, in name order.
std::vector<std::string> projection_tables(SqlTransaction& tx);

// A connection on the live read model at `live`, with `shadow` attached as
// "shadow". Throws: StorageError.
std::unique_ptr<SqlConnection> open_live_with_shadow(const std::filesystem::path& live,
                                                     const std::filesystem::path& shadow);

// Compares main.<table> with shadow.<table> for each table, adding counts,
// samples (up to max_samples in all) and schema differences to `report`.
// Runs inside a transaction the caller opened.
void compare_tables(SqlTransaction& tx, const std::vector<std::string>& tables,
                    std::size_t max_samples, CheckReport& report);

// Replaces each main.<table> by shadow.<table>: its definition, rows,
// indexes and triggers. Runs inside a write transaction the caller opened.
void replace_tables(SqlTransaction& tx, const std::vector<std::string>& tables);

}  // namespace annals::detail
