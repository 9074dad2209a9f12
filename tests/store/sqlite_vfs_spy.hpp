#pragma once
// A SQLite VFS for tests: forwards everything to the default VFS (every
// method of io_methods version 3, so WAL and its shared memory work through
// it), counts the syncs of the main database file and of its write-ahead log,
// can make the next writes to the log fail, and can fail the Nth xWrite, xSync
// or xTruncate on any file with a chosen code, once or from then on (fault
// injection). Open a store on it with SqliteStoreOptions::vfs = spy.name().
//
// Thread safety: counters and fault switches are atomics; the VFS itself is
// as thread-safe as the default one it forwards to. Register one spy per name
// at a time; it unregisters itself when destroyed (no connection may still use
// it then).

#include <sqlite3.h>

#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string>

namespace annals::testing {

class SqliteVfsSpy {
 public:
  explicit SqliteVfsSpy(std::string name) : name_(std::move(name)) {
    real_ = sqlite3_vfs_find(nullptr);
    if (real_ == nullptr) throw std::runtime_error("no default SQLite VFS");
    vfs_ = *real_;
    vfs_.zName = name_.c_str();
    vfs_.pNext = nullptr;
    vfs_.szOsFile = static_cast<int>(sizeof(File)) + real_->szOsFile;
    vfs_.pAppData = this;
    vfs_.xOpen = &SqliteVfsSpy::open;
    if (sqlite3_vfs_register(&vfs_, 0) != SQLITE_OK) {
      throw std::runtime_error("cannot register VFS " + name_);
    }
  }
  ~SqliteVfsSpy() { sqlite3_vfs_unregister(&vfs_); }
  SqliteVfsSpy(const SqliteVfsSpy&) = delete;
  SqliteVfsSpy& operator=(const SqliteVfsSpy&) = delete;

  const std::string& name() const { return name_; }

  /// xSync calls on the write-ahead log / on the main database file so far.
  int wal_syncs() const { return wal_syncs_.load(); }
  int db_syncs() const { return db_syncs_.load(); }
  /// Bytes written to write-ahead logs so far (frames and headers).
  long long wal_bytes_written() const { return wal_bytes_.load(); }
  void reset_counts() {
    wal_syncs_ = 0;
    db_syncs_ = 0;
    wal_bytes_ = 0;
  }

  /// While set, every write to the write-ahead log fails with SQLITE_IOERR_WRITE.
  void fail_wal_writes(bool on) { fail_wal_writes_ = on; }

  /// The file operations fault injection counts and fails.
  enum class Op { write = 0, sync = 1, truncate = 2 };
  static constexpr const char* op_name(Op op) {
    return op == Op::write ? "xWrite" : op == Op::sync ? "xSync" : "xTruncate";
  }

  /// Counts `op` calls from zero and fails the `nth` one (1-based) with `code`;
  /// with `persistent`, every later one too. Replaces an earlier fault.
  void fail_at(Op op, int nth, int code, bool persistent) {
    disarm();
    for (auto& c : calls_) c = 0;
    fired_ = 0;
    fault_code_ = code;
    fault_nth_ = nth;
    fault_persistent_ = persistent;
    fault_op_ = static_cast<int>(op);
  }
  /// Stops injecting faults; the counts stay readable.
  void disarm() { fault_op_ = -1; }
  /// Calls of `op` since the last fail_at().
  int calls(Op op) const { return calls_[static_cast<int>(op)].load(); }
  /// Calls failed on purpose since the last fail_at().
  int fired() const { return fired_.load(); }

 private:
  enum class Kind { main_db, wal, other };

  struct File {
    sqlite3_file base;  // must come first: SQLite sees this
    sqlite3_file* real;
    Kind kind;
    SqliteVfsSpy* spy;
  };

  static File* self(sqlite3_file* f) { return reinterpret_cast<File*>(f); }
  static sqlite3_file* real(sqlite3_file* f) { return self(f)->real; }

  static int open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags,
                  int* out_flags) {
    auto* spy = static_cast<SqliteVfsSpy*>(vfs->pAppData);
    File* f = self(file);
    std::memset(f, 0, sizeof(File));
    f->real = reinterpret_cast<sqlite3_file*>(f + 1);
    f->spy = spy;
    f->kind = (flags & SQLITE_OPEN_MAIN_DB) ? Kind::main_db
              : (flags & SQLITE_OPEN_WAL)   ? Kind::wal
                                            : Kind::other;
    const int rc = spy->real_->xOpen(spy->real_, name, f->real, flags, out_flags);
    // SQLite calls xClose only when pMethods is set, so set it only on success.
    f->base.pMethods = (rc == SQLITE_OK && f->real->pMethods != nullptr) ? &kMethods : nullptr;
    return rc;
  }

  static int close(sqlite3_file* f) {
    sqlite3_file* r = real(f);
    return r->pMethods != nullptr ? r->pMethods->xClose(r) : SQLITE_OK;
  }
  static int read(sqlite3_file* f, void* buf, int amount, sqlite3_int64 offset) {
    return real(f)->pMethods->xRead(real(f), buf, amount, offset);
  }
  // SQLITE_OK, or the code of a fault armed with fail_at() for this call.
  int inject(Op op) {
    const int n = ++calls_[static_cast<int>(op)];
    if (fault_op_.load() != static_cast<int>(op)) return SQLITE_OK;
    const int nth = fault_nth_.load();
    if (n == nth || (fault_persistent_.load() && n > nth)) {
      ++fired_;
      return fault_code_.load();
    }
    return SQLITE_OK;
  }

  static int write(sqlite3_file* f, const void* buf, int amount, sqlite3_int64 offset) {
    if (self(f)->kind == Kind::wal && self(f)->spy->fail_wal_writes_.load()) {
      return SQLITE_IOERR_WRITE;
    }
    if (const int rc = self(f)->spy->inject(Op::write); rc != SQLITE_OK) return rc;
    if (self(f)->kind == Kind::wal) self(f)->spy->wal_bytes_ += amount;
    return real(f)->pMethods->xWrite(real(f), buf, amount, offset);
  }
  static int truncate(sqlite3_file* f, sqlite3_int64 size) {
    if (const int rc = self(f)->spy->inject(Op::truncate); rc != SQLITE_OK) return rc;
    return real(f)->pMethods->xTruncate(real(f), size);
  }
  static int sync(sqlite3_file* f, int flags) {
    if (const int rc = self(f)->spy->inject(Op::sync); rc != SQLITE_OK) return rc;
    if (self(f)->kind == Kind::wal) ++self(f)->spy->wal_syncs_;
    if (self(f)->kind == Kind::main_db) ++self(f)->spy->db_syncs_;
    return real(f)->pMethods->xSync(real(f), flags);
  }
  static int file_size(sqlite3_file* f, sqlite3_int64* size) {
    return real(f)->pMethods->xFileSize(real(f), size);
  }
  static int lock(sqlite3_file* f, int level) { return real(f)->pMethods->xLock(real(f), level); }
  static int unlock(sqlite3_file* f, int level) {
    return real(f)->pMethods->xUnlock(real(f), level);
  }
  static int check_reserved(sqlite3_file* f, int* out) {
    return real(f)->pMethods->xCheckReservedLock(real(f), out);
  }
  static int file_control(sqlite3_file* f, int op, void* arg) {
    return real(f)->pMethods->xFileControl(real(f), op, arg);
  }
  static int sector_size(sqlite3_file* f) { return real(f)->pMethods->xSectorSize(real(f)); }
  static int device_characteristics(sqlite3_file* f) {
    return real(f)->pMethods->xDeviceCharacteristics(real(f));
  }
  static int shm_map(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
    return real(f)->pMethods->xShmMap(real(f), page, size, extend, out);
  }
  static int shm_lock(sqlite3_file* f, int offset, int n, int flags) {
    return real(f)->pMethods->xShmLock(real(f), offset, n, flags);
  }
  static void shm_barrier(sqlite3_file* f) { real(f)->pMethods->xShmBarrier(real(f)); }
  static int shm_unmap(sqlite3_file* f, int delete_flag) {
    return real(f)->pMethods->xShmUnmap(real(f), delete_flag);
  }
  // No memory-mapped I/O through the spy: every read goes through xRead.
  static int fetch(sqlite3_file*, sqlite3_int64, int, void** out) {
    *out = nullptr;
    return SQLITE_OK;
  }
  static int unfetch(sqlite3_file*, sqlite3_int64, void*) { return SQLITE_OK; }

  static constexpr sqlite3_io_methods kMethods = {
      3,
      &close,
      &read,
      &write,
      &truncate,
      &sync,
      &file_size,
      &lock,
      &unlock,
      &check_reserved,
      &file_control,
      &sector_size,
      &device_characteristics,
      &shm_map,
      &shm_lock,
      &shm_barrier,
      &shm_unmap,
      &fetch,
      &unfetch,
  };

  std::string name_;
  sqlite3_vfs* real_ = nullptr;
  sqlite3_vfs vfs_{};
  std::atomic<int> wal_syncs_{0};
  std::atomic<int> db_syncs_{0};
  std::atomic<long long> wal_bytes_{0};
  std::atomic<bool> fail_wal_writes_{false};
  std::atomic<int> calls_[3] = {0, 0, 0};
  std::atomic<int> fault_op_{-1};  // an Op, or -1 when disarmed
  std::atomic<int> fault_nth_{0};
  std::atomic<int> fault_code_{SQLITE_OK};
  std::atomic<bool> fault_persistent_{false};
  std::atomic<int> fired_{0};
};

}  // namespace annals::testing
