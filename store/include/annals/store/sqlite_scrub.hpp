#pragma once
/// Removing deleted bytes from an SQLite file, for erasure: after a read
/// model row holding personal data is overwritten (say, after
/// KeyStore::forget), SQLite may still hold the old bytes in free space of
/// the file and in its WAL.
///
///   views.write([](annals::SqlTransaction& tx) { tx.exec("UPDATE ... SET owner = ..."); });
///   annals::scrub_sqlite_file("bank.db");
///
/// Thread safety: reentrant; other connections to the file may stay open
/// but must not be inside a transaction (a reader's snapshot keeps the WAL).

#include <filesystem>

namespace annals {

/// Rewrites `path` without its free space (VACUUM, with secure_delete=ON and
/// temporary data kept in memory), then copies the WAL into the file and
/// truncates the WAL to zero bytes (wal_checkpoint(TRUNCATE)). Every row
/// stays as it is; positions and hashes of a store are unchanged. The whole
/// file is rewritten: the cost grows with its size.
/// Throws: StorageError naming the file when it cannot be opened or
/// vacuumed, or when another connection kept the WAL from being truncated
/// (the deleted bytes may then remain in "<path>-wal": run it again).
void scrub_sqlite_file(const std::filesystem::path& path);

}  // namespace annals
