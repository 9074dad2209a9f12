#pragma once
/// SqliteKeyStore: data subjects' keys (annals/core/personal_data.hpp) in an
/// SQLite file of their own, beside the store but never inside it, so that an
/// export, a copy or a backup of the store carries no key.
///
///   annals::SqliteKeyStore keys(annals::SqliteKeyStore::default_path("bank.db"),
///                               {.create_if_missing = true});   // bank.db.keys
///   annals::Repository<Account> accounts(store, {.keys = &keys});
///   keys.forget("account-42");
///
/// Schema (PRAGMA user_version 1):
///   subject_keys(subject TEXT PRIMARY KEY, key_id TEXT UNIQUE, key BLOB (32 bytes),
///                created_at INTEGER)                -- microseconds, UTC
///   forgotten_keys(key_id TEXT PRIMARY KEY, forgotten_at INTEGER)
/// forget() deletes the subject's row and keeps only its key id in
/// forgotten_keys, so a decode can tell "forgotten" (a placeholder) from "not
/// this key store" (an error). Neither the subject id nor the key survives it.
///
/// So that a destroyed key does not survive in the file: the file is created
/// with mode 0600, every connection sets PRAGMA secure_delete=ON (deleted
/// rows are overwritten with zeros) and journal_mode=DELETE (the rollback
/// journal, which holds the old page during a transaction, is removed at
/// commit; there is no WAL). synchronous=FULL: an acknowledged key or forget
/// survives power loss.
///
/// The file is opened at the first call that needs it, not by the
/// constructor: a store whose events hold no personal data works without a
/// key store file. A missing, unreadable or corrupt file, or one that is not
/// a key store, is a KeyStoreError naming its path. Keys never appear in
/// error messages.
///
/// Back the file up separately from the store (docs/privacy.md): without it,
/// the personal fields cannot be read; restoring an older copy brings back
/// keys forgotten since, so repeat those forget() calls after a restore.
///
/// Thread safety: safe for concurrent use from many threads (one connection
/// behind a mutex) and from several processes (SQLite locking, busy timeout).

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "annals/core/personal_data.hpp"

namespace annals {

struct SqliteKeyStoreOptions {
  /// Create the file (mode 0600) when key_for() needs it and it does not
  /// exist. Without it, key_for() on a missing file throws KeyStoreError.
  /// Default: false.
  bool create_if_missing = false;
  /// Never write: key_for() of a subject without a key and forget() throw
  /// KeyStoreError; the file opens without write permission. Default: false.
  bool read_only = false;
  /// How long to wait for another process's lock. Default: 30 s.
  std::chrono::milliseconds busy_timeout{30'000};
};

class SqliteKeyStore final : public KeyStore {
 public:
  /// Remembers `path`; touches no file until first used.
  explicit SqliteKeyStore(std::filesystem::path path, SqliteKeyStoreOptions options = {});
  ~SqliteKeyStore() override;
  SqliteKeyStore(const SqliteKeyStore&) = delete;
  SqliteKeyStore& operator=(const SqliteKeyStore&) = delete;

  /// The conventional key store of a store file: "<store file>.keys".
  static std::filesystem::path default_path(const std::filesystem::path& store_file);

  const std::filesystem::path& path() const noexcept;

  /// See KeyStore. Throws: as there; KeyStoreError names the path.
  DataKey key_for(std::string_view subject) override;
  KeyLookup find(std::string_view key_id) const override;
  bool forget(std::string_view subject) override;
  /// "key store '<path>'".
  std::string description() const override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace annals
