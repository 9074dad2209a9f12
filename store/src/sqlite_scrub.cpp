#include "annals/store/sqlite_scrub.hpp"

#include "annals/store/internal/sqlite_support.hpp"

namespace annals {

void scrub_sqlite_file(const std::filesystem::path& path) {
  if (!detail::file_exists(path, "database")) {
    throw StorageError("cannot scrub '" + path.string() + "': the file does not exist");
  }
  try {
    SQLite::Database db(path.string(), SQLite::OPEN_READWRITE, 30'000);
    db.exec("PRAGMA secure_delete = ON");
    db.exec("PRAGMA temp_store = MEMORY");
    db.exec("VACUUM");
    SQLite::Statement checkpoint(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    // One row: busy, WAL frames, frames checkpointed (-1, -1 when not in WAL mode).
    if (checkpoint.executeStep() && checkpoint.getColumn(0).getInt() != 0) {
      throw StorageError("cannot truncate the WAL of '" + path.string() +
                         "': another connection is reading; deleted data may remain in its "
                         "-wal file until this runs again",
                         SQLITE_BUSY, SQLITE_BUSY);
    }
  } catch (const SQLite::Exception& e) {
    throw detail::storage_error(e, "scrubbing '" + path.string() + "'");
  }
}

}  // namespace annals
