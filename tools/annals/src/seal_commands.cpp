// The seal commands: `annals keygen`, `annals seal` and `annals verify --seal`
// (annals/store/seal.hpp for what a seal states and proves).

#include <iostream>

#include "annals/core/error.hpp"
#include "annals/store/seal.hpp"
#include "commands.hpp"

namespace annals::tool {

namespace {

std::string named(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

// A key or seal file the user named: what is wrong with it is a failed
// command (exit 1), not an unusable store.
template <class Fn>
auto user_file(Fn&& fn) {
  try {
    return fn();
  } catch (const InvalidArgument& e) {
    throw ToolError(kExitFailure, e.what());
  }
}

}  // namespace

int run_keygen(const KeygenCommand& c, Io& io) {
  const SealKey key = SealKey::generate();
  try {
    key.save_private(c.key);
    if (!c.public_key.empty()) key.save_public(c.public_key);
  } catch (const StorageError& e) {
    throw ToolError(kExitFailure, e.what());
  }
  io.out << "key " << key.key_id() << " written to " << named(c.key) << " (mode 0600)";
  if (!c.public_key.empty()) io.out << ", its public key to " << named(c.public_key);
  io.out << "\npublic key " << key.public_hex() << '\n';
  return kExitOk;
}

int run_seal(const SealCommand& c, Io& io) {
  // Load the key first: a bad key file leaves the store untouched.
  std::optional<SealKey> key;
  if (!c.key.empty()) key = user_file([&] { return SealKey::load(c.key); });
  if (key && !key->has_private()) {
    throw ToolError(kExitFailure, "the key file " + named(c.key) +
                                      " holds a public key; sealing needs the private key");
  }
  Seal s;
  if (is_postgres_url(c.db)) {
    s = seal_postgres(c.db, key ? &*key : nullptr);  // kept in the schema's seals table
  } else {
    open_for_reading(c.db);  // refuses what is not a store, untouched
    require_writable(c.db, "store file");
    SqliteStoreOptions options;
    options.create_if_missing = false;
    std::unique_ptr<SqliteEventStore> store;
    try {
      store = std::make_unique<SqliteEventStore>(c.db, options);
    } catch (const StorageError& e) {
      throw ToolError(kExitUnusable, e.what());
    }
    s = seal(*store, key ? &*key : nullptr);
  }
  io.out << to_seal_json(s);
  io.out.flush();
  if (!io.out) throw ToolError(kExitFailure, "cannot write the seal to the output");
  if (!key) {
    io.err << "annals seal: warning: no --key given, so the seal is unsigned: it records the "
              "head, but anyone able to rewrite the store could write a matching one\n";
  }
  io.err << "sealed " << store_name(c.db) << " at position " << s.head_position << " ("
         << s.event_count << " events)"
         << (key ? ", signed with key " + key->key_id() : std::string()) << '\n';
  return kExitOk;
}

int run_verify_seal(const VerifyCommand& c, Io& io) {
  const Seal s = user_file([&] { return read_seal_file(c.seal); });
  std::optional<SealKey> trusted;
  if (!c.key.empty()) trusted = user_file([&] { return SealKey::load(c.key); });
  const auto store = open_store(c.db);
  const SealVerifyResult r = verify_seal(*store, s, trusted ? &*trusted : nullptr);
  const std::string signature = !s.is_signed()   ? "none"
                                : r.key_trusted ? "trusted"
                                                : "unpinned";
  if (c.json) {
    Json j{{"ok", r.ok},
           {"problem", std::string(to_string(r.problem))},
           {"store_id", s.store_id},
           {"sealed_position", s.head_position},
           {"sealed_at", format_timestamp(s.sealed_at)},
           {"head_position", r.head_position},
           {"events_checked", r.events_checked},
           {"signature", signature}};
    if (!r.ok) j["reason"] = r.reason;
    if (r.first_bad_position > 0) j["first_bad_position"] = r.first_bad_position;
    io.out << j.dump() << '\n';
  } else if (r.ok) {
    io.out << "ok: the seal of position " << s.head_position << " ("
           << format_timestamp(s.sealed_at) << ") holds; " << r.events_checked
           << " events, hash chain intact, "
           << r.head_position - s.head_position << " appended since\n";
    if (signature == "trusted") {
      io.out << "signature: by the trusted key " << trusted->key_id() << '\n';
    } else if (signature == "unpinned") {
      io.out << "signature: valid, by key " << SealKey::from_public_hex(s.public_key).key_id()
             << ", which was not checked against a trusted key (give --key)\n";
    } else {
      io.out << "signature: none (an unsigned seal)\n";
    }
  }
  if (!r.ok) {
    throw ToolError(kExitIntegrity, store_name(c.db) + " does not match the seal " + named(c.seal) +
                                        ": " + std::string(to_string(r.problem)) + ": " +
                                        r.reason);
  }
  return kExitOk;
}

}  // namespace annals::tool
