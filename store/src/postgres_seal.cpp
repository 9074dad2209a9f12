// Sealing a PostgreSQL store (annals/store/seal.hpp tells what a seal is).
// The seals table lives beside `events` in the store's schema:
//
//   seals(seal_number bigint identity PRIMARY KEY, head_position bigint,
//         head_hash bytea, event_count bigint, sealed_at bigint (microseconds),
//         key_id text (NULL: unsigned), seal text (the seal file's JSON))
//
// append-only through triggers, as on SQLite. Stores made before it get it at
// their first seal.

#include <string>

#include "annals/core/error.hpp"
#include "postgres_store_impl.hpp"

namespace annals {

namespace detail::pg {

const char* const kSealsSql =
    "CREATE TABLE IF NOT EXISTS seals (\n"
    "  seal_number bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
    "  head_position bigint NOT NULL,\n"
    "  head_hash bytea NOT NULL,\n"
    "  event_count bigint NOT NULL,\n"
    "  sealed_at bigint NOT NULL,\n"
    "  key_id text,\n"
    "  seal text NOT NULL);\n"
    "CREATE OR REPLACE FUNCTION annals_refuse_seal_change() RETURNS trigger\n"
    "  LANGUAGE plpgsql AS $$ BEGIN\n"
    "  RAISE EXCEPTION 'annals: the seals table is append-only (% refused)', TG_OP;\n"
    "END $$;\n"
    "CREATE OR REPLACE TRIGGER annals_seals_no_update BEFORE UPDATE OR DELETE ON seals\n"
    "  FOR EACH ROW EXECUTE FUNCTION annals_refuse_seal_change();\n"
    "CREATE OR REPLACE TRIGGER annals_seals_no_truncate BEFORE TRUNCATE ON seals\n"
    "  FOR EACH STATEMENT EXECUTE FUNCTION annals_refuse_seal_change();\n";

}  // namespace detail::pg

using namespace detail::pg;

Seal seal(PostgresEventStore& store, const SealKey* key, const Clock& clock) {
  if (key != nullptr && !key->has_private()) {
    throw InvalidArgument("sealing needs a private key; the key given is a public key");
  }
  using Impl = PostgresEventStore::Impl;
  auto lease = store.impl_->lease();
  PGconn* c = lease.get();
  const std::string where = "sealing schema '" + store.impl_->options_.schema + "'";
  try {
    Impl::exec(c, "begin a seal", "BEGIN", {}, Impl::Send::text);
    // The head-row lock, as an append takes it: the head read below is the
    // head when the seal commits.
    auto head = Impl::exec(c, "lock the head row",
                           "SELECT position FROM annals_head WHERE id = 1 FOR UPDATE", {},
                           Impl::Send::text);
    Seal s;
    s.head_position = get_i8(head.get(), 0, 0);
    auto id = Impl::exec(c, "read the store id",
                         "SELECT value FROM annals_meta WHERE key = 'store_id'", {},
                         Impl::Send::text);
    if (PQntuples(id.get()) == 0) throw StorageError("cannot seal: the store has no id");
    s.store_id = get_bytes(id.get(), 0, 0);
    if (s.head_position > 0) {
      auto last = Impl::exec(c, "read the head event",
                             "SELECT hash, (SELECT count(*) FROM events) FROM events "
                             "WHERE position = $1",
                             Params().i8(s.head_position), Impl::Send::text);
      const std::string hash = PQntuples(last.get()) == 1 ? get_bytes(last.get(), 0, 0) : "";
      if (hash.size() != s.head_hash.size()) {
        throw IntegrityError("cannot seal: the event at position " +
                                 std::to_string(s.head_position) + " has no valid hash",
                             s.head_position);
      }
      s.head_hash = to_hash(hash);
      s.event_count = get_i8(last.get(), 0, 1);
    }
    s.sealed_at = clock.now();
    if (key != nullptr) {
      s.public_key = key->public_hex();
      s.signature = key->sign(seal_message(s));
    }
    auto has_table = Impl::exec(c, "look for the seals table",
                                "SELECT to_regclass('seals') IS NOT NULL", {}, Impl::Send::text);
    if (PQgetvalue(has_table.get(), 0, 0)[0] == 0) {
      Impl::exec_script(c, "create the seals table", kSealsSql);
    }
    Params insert;
    insert.i8(s.head_position).bytes(hash_bytes(s.head_hash)).i8(s.event_count);
    insert.i8(to_micros(s.sealed_at));
    if (key != nullptr) {
      insert.text(key->key_id());
    } else {
      insert.null(kText);
    }
    insert.text(to_seal_json(s));
    Impl::exec(c, "record the seal",
               "INSERT INTO seals (head_position, head_hash, event_count, sealed_at, key_id, "
               "seal) VALUES ($1, $2, $3, $4, $5, $6)",
               insert, Impl::Send::text);
    Impl::exec(c, "commit the seal", "COMMIT", {}, Impl::Send::text);
    return s;
  } catch (const StorageError& e) {
    // The lease drops a connection left inside a transaction.
    throw StorageError(where + ": " + e.what());
  }
}

}  // namespace annals
