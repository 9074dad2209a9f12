#pragma once
/// PostgresKeyStore: data subjects' keys (annals/core/personal_data.hpp) in a
/// PostgreSQL schema of their own, for services on several machines that
/// share one PostgresEventStore: every machine must decode with the same keys,
/// and forget() must take effect for all of them at once.
///
///   annals::PostgresKeyStore keys("postgresql://app@db/bank",
///                                 {.schema = "bank_keys", .create_if_missing = true});
///   annals::Repository<Account> accounts(store, {.keys = &keys});
///   keys.forget("account-42");
///
/// Keep the schema apart from the store's: a `pg_dump --exclude-schema=bank_keys`
/// of the store then carries no key, as SqliteKeyStore's separate file does.
/// The connection may also name another database or server.
///
/// Tables (in `schema`; annals_key_meta holds layout 1):
///   subject_keys(subject text PRIMARY KEY, key_id text UNIQUE, key bytea (32 bytes),
///                created_at bigint)               -- microseconds, UTC
///   forgotten_keys(key_id text PRIMARY KEY, forgotten_at bigint)
/// forget() deletes the subject's row and keeps only its key id in
/// forgotten_keys, so a decode can tell "forgotten" (a placeholder) from "not
/// this key store" (an error).
///
/// So that a destroyed key does not survive in the table's files: PostgreSQL
/// keeps a deleted row's bytes in the table until it is rewritten, so forget()
/// rewrites subject_keys after deleting (scrub_postgres_table, VACUUM FULL),
/// which needs the table's owner; a role that is not refuses forget() before
/// changing anything (PostgresKeyStoreOptions::scrub = false lifts that, and
/// leaves the rewrite to the owner). The rewrite first waits for every
/// transaction older than it to end, since a rewrite copies the rows an open
/// snapshot may still see. The `key` and `subject` columns keep no planner
/// statistics (SET STATISTICS 0), so ANALYZE copies none of their values into
/// pg_statistic. Copies outside the table are not in reach of any client: the
/// WAL keeps the inserted key until its segments are recycled, WAL archives
/// and base backups until they expire, server logs what they were configured
/// to log. docs/privacy.md says how to bound them.
///
/// The connection is opened at the first call that needs it, not by the
/// constructor, as SqliteKeyStore opens its file. A server that cannot be
/// reached, a schema without a key store (and create_if_missing off) or with
/// tables of another layout is a KeyStoreError naming the schema. Keys never
/// appear in error messages (only the server's primary message is kept, never
/// its DETAIL, which may quote a row); the connection string's password
/// neither.
///
/// Thread safety: safe for concurrent use from many threads (one connection
/// behind a mutex; a call that finds it dropped by the server reconnects and
/// runs again, once) and from many processes and machines (inserts race to
/// one winner by the primary key).

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "annals/core/personal_data.hpp"

namespace annals {

struct PostgresKeyStoreOptions {
  /// The schema of the key store's tables (ASCII letters, digits and '_', not
  /// starting with a digit, at most 63 bytes). Default: "annals_keys".
  std::string schema = "annals_keys";
  /// Create the schema and its tables when missing, at the first call that
  /// needs them. Default: false (a missing key store is an error).
  bool create_if_missing = false;
  /// Never write: key_for() of a subject without a key and forget() throw
  /// KeyStoreError. Default: false.
  bool read_only = false;
  /// Rewrite subject_keys after each forget() (see above). Default: true.
  bool scrub = true;
  /// How long forget()'s rewrite waits for the transactions older than it to
  /// end and then for the table's lock, before failing with KeyScrubPending.
  /// At least 1 ms, at most 2^31 - 1 ms. Default: 30 s.
  std::chrono::milliseconds scrub_timeout{30'000};
};

/// forget() destroyed the key (a decode now reads the field as erased), but
/// could not yet rewrite the table, so its bytes may still lie in the table's
/// files: a transaction older than the forget stayed open, the table's lock
/// was not granted in time, or the connection failed. Calling forget() again
/// (it then returns false) finishes the rewrite.
class KeyScrubPending : public KeyStoreError {
 public:
  using KeyStoreError::KeyStoreError;
};

class PostgresKeyStore final : public KeyStore {
 public:
  /// Remembers the connection (a libpq connection string or
  /// postgresql:// URL); connects at first use.
  /// Throws: InvalidArgument for a bad schema name.
  explicit PostgresKeyStore(std::string connection, PostgresKeyStoreOptions options = {});
  ~PostgresKeyStore() override;
  PostgresKeyStore(const PostgresKeyStore&) = delete;
  PostgresKeyStore& operator=(const PostgresKeyStore&) = delete;

  /// See KeyStore. Throws: as there; KeyStoreError names the schema.
  DataKey key_for(std::string_view subject) override;
  KeyLookup find(std::string_view key_id) const override;
  /// See KeyStore. Runs its delete in one transaction, then the rewrite.
  /// Throws: as KeyStore::forget (nothing changed), and KeyScrubPending when
  /// the key is destroyed but the rewrite is not done.
  bool forget(std::string_view subject) override;
  /// "key store (PostgreSQL schema "<schema>")".
  std::string description() const override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

/// Rewrites `table` of `schema` (VACUUM FULL), so that the bytes of rows
/// deleted or updated before the call no longer lie in its data files:
/// PostgreSQL leaves an old row version in place until the table is
/// rewritten, and a plain VACUUM only marks its space free. A rewrite copies
/// every row version an open snapshot may still see, so it first waits until
/// every transaction (and prepared transaction, and replication slot) older
/// than the call has let go of its snapshot. Then it takes an ACCESS EXCLUSIVE
/// lock on the table for the copy (readers and writers of the table wait).
/// `timeout` bounds both waits. Runs on a connection of its own, outside any
/// transaction. The WAL, its archives, backups, server logs and the file
/// system's free blocks are out of its reach.
/// Throws: InvalidArgument for a bad schema or table name or a timeout out of
/// [1 ms, 2^31 - 1 ms]; StorageError when the table does not exist, when the
/// connected role may not vacuum it (not its owner nor the database's:
/// PostgreSQL itself would only warn and skip it), when a wait times out
/// (naming the open transactions' process ids), or when the rewrite fails.
/// The table is unchanged then.
/// Thread safety: a free function; any number may run at once.
void scrub_postgres_table(const std::string& connection, const std::string& schema,
                          const std::string& table,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace annals
