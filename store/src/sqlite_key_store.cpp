#include "annals/store/sqlite_key_store.hpp"

#include <mutex>
#include <optional>

#include "annals/core/clock.hpp"
#include "annals/core/stream_id.hpp"
#include "annals/core/thread_annotations.hpp"
#include <SQLiteCpp/Transaction.h>

#include "annals/store/internal/sqlite_support.hpp"

namespace annals {

namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS subject_keys ("
    " subject TEXT PRIMARY KEY, key_id TEXT NOT NULL UNIQUE,"
    " key BLOB NOT NULL CHECK (length(key) = 32), created_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS forgotten_keys ("
    " key_id TEXT PRIMARY KEY, forgotten_at INTEGER NOT NULL);"
    "PRAGMA user_version = 1;";

std::int64_t now_micros() { return to_micros(SystemClock{}.now()); }

}  // namespace

class SqliteKeyStore::Impl {
 public:
  Impl(std::filesystem::path path, SqliteKeyStoreOptions options)
      : path_(std::move(path)), options_(options) {}

  std::string description() const { return "key store '" + path_.string() + "'"; }

  [[noreturn]] void fail(const SQLite::Exception& e, const std::string& doing) const {
    throw KeyStoreError("cannot " + doing + " " + description() + ": " + e.what(),
                        e.getErrorCode(), e.getExtendedErrorCode());
  }

  // The open connection; opens (and with `create`, creates) the file first.
  SQLite::Database& db(bool create) ANNALS_REQUIRES(mutex_) {
    if (db_) return *db_;
    bool exists = false;
    try {
      exists = detail::file_exists(path_, "key store");
    } catch (const StorageError& e) {
      throw KeyStoreError(e.what());
    }
    if (!exists) {
      if (!create || !options_.create_if_missing || options_.read_only) {
        throw KeyStoreError(description() +
                            " does not exist: the personal data it encrypted cannot be read "
                            "without it (restore it from its backup)");
      }
      try {
        detail::create_private_file(path_, "key store");
      } catch (const StorageError& e) {
        throw KeyStoreError(e.what());
      }
    }
    try {
      const int flags = options_.read_only ? SQLite::OPEN_READONLY : SQLite::OPEN_READWRITE;
      auto db = std::make_unique<SQLite::Database>(path_.string(), flags,
                                                   static_cast<int>(options_.busy_timeout.count()));
      db->exec("PRAGMA secure_delete = ON");
      if (!options_.read_only) {
        db->exec("PRAGMA journal_mode = DELETE");
        db->exec("PRAGMA synchronous = FULL");
      }
      db->exec("PRAGMA temp_store = MEMORY");
      check_schema(*db, create && !options_.read_only && options_.create_if_missing);
      db_ = std::move(db);
    } catch (const SQLite::Exception& e) {
      fail(e, "open");
    }
    return *db_;
  }

  void check_schema(SQLite::Database& db, bool may_create) {
    const int version = db.execAndGet("PRAGMA user_version").getInt();
    const int tables = db.execAndGet(
                             "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                             " AND name IN ('subject_keys', 'forgotten_keys')")
                           .getInt();
    const int others = db.execAndGet("SELECT count(*) FROM sqlite_master").getInt();
    if (version == kSchemaVersion && tables == 2) return;
    if (version == 0 && others == 0 && may_create) {
      SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
      db.exec(kSchema);
      tx.commit();
      return;
    }
    if (version == 0 && others == 0) {
      throw KeyStoreError(description() + " is empty: it holds no keys (restore it from its backup)");
    }
    throw KeyStoreError(description() + " is not an Annals key store (user_version " +
                        std::to_string(version) + ")");
  }

  DataKey key_for(std::string_view subject) {
    validate_stream_id(subject);
    detail::MutexLock lock(mutex_);
    auto& d = db(true);
    try {
      if (auto key = key_of_subject(d, subject)) return std::move(*key);
      if (options_.read_only) {
        throw KeyStoreError(description() + " is open read-only and has no key for this subject");
      }
      // Another process may add the subject's key between the read above and
      // this transaction: the insert is ignored then, and its key returned.
      SQLite::Transaction tx(d, SQLite::TransactionBehavior::IMMEDIATE);
      const DataKey fresh = DataKey::generate();
      SQLite::Statement insert(d,
                               "INSERT OR IGNORE INTO subject_keys VALUES (?1, ?2, ?3, ?4)");
      insert.bind(1, std::string(subject));
      insert.bind(2, fresh.key_id());
      insert.bind(3, fresh.bytes().data(), static_cast<int>(fresh.bytes().size()));
      insert.bind(4, static_cast<std::int64_t>(now_micros()));
      insert.exec();
      auto key = key_of_subject(d, subject);
      tx.commit();
      if (!key) throw KeyStoreError(description() + " lost a key it just wrote");
      return std::move(*key);
    } catch (const SQLite::Exception& e) {
      fail(e, "write a key to");
    }
  }

  KeyLookup find(std::string_view key_id) {
    detail::MutexLock lock(mutex_);
    auto& d = db(false);
    try {
      SQLite::Statement q(d, "SELECT key FROM subject_keys WHERE key_id = ?1");
      q.bind(1, std::string(key_id));
      if (q.executeStep()) return KeyLookup{KeyState::present, key_from(q, 0, std::string(key_id))};
      SQLite::Statement f(d, "SELECT 1 FROM forgotten_keys WHERE key_id = ?1");
      f.bind(1, std::string(key_id));
      if (f.executeStep()) return KeyLookup{KeyState::forgotten, std::nullopt};
      return KeyLookup{KeyState::unknown, std::nullopt};
    } catch (const SQLite::Exception& e) {
      fail(e, "read");
    }
  }

  bool forget(std::string_view subject) {
    validate_stream_id(subject);
    detail::MutexLock lock(mutex_);
    if (options_.read_only) {
      throw KeyStoreError(description() + " is open read-only: cannot forget a subject");
    }
    auto& d = db(false);
    try {
      SQLite::Transaction tx(d, SQLite::TransactionBehavior::IMMEDIATE);
      SQLite::Statement q(d, "SELECT key_id FROM subject_keys WHERE subject = ?1");
      q.bind(1, std::string(subject));
      if (!q.executeStep()) return false;  // the transaction rolls back: nothing to do
      const std::string key_id = q.getColumn(0).getString();
      q.reset();
      SQLite::Statement tomb(d, "INSERT OR IGNORE INTO forgotten_keys VALUES (?1, ?2)");
      tomb.bind(1, key_id);
      tomb.bind(2, static_cast<std::int64_t>(now_micros()));
      tomb.exec();
      SQLite::Statement del(d, "DELETE FROM subject_keys WHERE subject = ?1");
      del.bind(1, std::string(subject));
      del.exec();
      tx.commit();
      return true;
    } catch (const SQLite::Exception& e) {
      fail(e, "forget a subject in");
    }
  }

  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::optional<DataKey> key_of_subject(SQLite::Database& d, std::string_view subject) {
    SQLite::Statement q(d, "SELECT key_id, key FROM subject_keys WHERE subject = ?1");
    q.bind(1, std::string(subject));
    if (!q.executeStep()) return std::nullopt;
    return key_from(q, 1, q.getColumn(0).getString());
  }

  DataKey key_from(SQLite::Statement& q, int index, const std::string& key_id) const {
    const SQLite::Column column = q.getColumn(index);
    if (column.getBytes() != static_cast<int>(DataKey::kSize)) {
      throw KeyStoreError(description() + " holds a damaged key '" + key_id + "'");
    }
    DataKey::Bytes bytes{};
    const auto* blob = static_cast<const unsigned char*>(column.getBlob());
    std::copy(blob, blob + DataKey::kSize, bytes.begin());
    DataKey key(key_id, bytes);
    std::fill(bytes.begin(), bytes.end(), 0);
    return key;
  }

  std::filesystem::path path_;
  SqliteKeyStoreOptions options_;
  detail::Mutex mutex_;
  std::unique_ptr<SQLite::Database> db_ ANNALS_GUARDED_BY(mutex_);  // opened on first use
};

SqliteKeyStore::SqliteKeyStore(std::filesystem::path path, SqliteKeyStoreOptions options)
    : impl_(std::make_unique<Impl>(std::move(path), options)) {}

SqliteKeyStore::~SqliteKeyStore() = default;

std::filesystem::path SqliteKeyStore::default_path(const std::filesystem::path& store_file) {
  std::filesystem::path p = store_file;
  p += ".keys";
  return p;
}

const std::filesystem::path& SqliteKeyStore::path() const noexcept { return impl_->path(); }
DataKey SqliteKeyStore::key_for(std::string_view subject) { return impl_->key_for(subject); }
KeyLookup SqliteKeyStore::find(std::string_view key_id) const { return impl_->find(key_id); }
bool SqliteKeyStore::forget(std::string_view subject) { return impl_->forget(subject); }
std::string SqliteKeyStore::description() const { return impl_->description(); }

}  // namespace annals
