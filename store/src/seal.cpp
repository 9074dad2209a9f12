// Seals: Ed25519 keys through OpenSSL's EVP interface, the seal file format
// (annals/store/seal.hpp), sealing a SQLite store and checking a store
// against a seal. The seals table is described in sqlite_schema.cpp.

#include "annals/store/seal.hpp"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/objects.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>

#include "annals/core/error.hpp"
#include "annals/core/event_hash.hpp"
#include "annals/store/sqlite_event_store.hpp"
#include "annals/store/internal/sqlite_support.hpp"

namespace annals {

namespace {

constexpr std::size_t kPublicKeyBytes = 32;
constexpr std::size_t kSignatureBytes = 64;
constexpr std::size_t kMaxSealFileBytes = 64 * 1024;

struct PkeyFree {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
struct BioFree {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

std::string hex(const unsigned char* bytes, std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 0x0F]);
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes exactly `n` bytes of hex; false when `text` is not that.
bool unhex(std::string_view text, std::size_t n, unsigned char* out) {
  if (text.size() != n * 2) return false;
  for (std::size_t i = 0; i < n; ++i) {
    const int hi = hex_digit(text[2 * i]);
    const int lo = hex_digit(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

// No passphrase prompt, ever: an encrypted key fails to load instead.
int no_passphrase(char*, int, int, void*) { return -1; }

std::string named(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

std::string raw_public_hex(EVP_PKEY* key) {
  unsigned char raw[kPublicKeyBytes];
  std::size_t len = sizeof raw;
  if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1 || len != kPublicKeyBytes) {
    throw Error("OpenSSL: cannot read an Ed25519 public key");
  }
  return hex(raw, len);
}

}  // namespace

// ---- keys --------------------------------------------------------------------

struct SealKey::Impl {
  Pkey key;
  bool has_private = false;
  std::string public_hex;
};

SealKey::SealKey(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

SealKey SealKey::generate() {
  EVP_PKEY* raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (raw == nullptr) throw Error("OpenSSL: cannot generate an Ed25519 key");
  auto impl = std::make_shared<Impl>();
  impl->key.reset(raw);
  impl->has_private = true;
  impl->public_hex = raw_public_hex(raw);
  return SealKey(std::move(impl));
}

SealKey SealKey::load(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InvalidArgument("cannot read the key file " + named(file));
  std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw InvalidArgument("cannot read the key file " + named(file));
  if (pem.size() > kMaxSealFileBytes) {
    throw InvalidArgument("the key file " + named(file) + " is too large to be a PEM key");
  }
  auto impl = std::make_shared<Impl>();
  const bool is_public = pem.find("-----BEGIN PUBLIC KEY-----") != std::string::npos;
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) throw Error("OpenSSL: out of memory reading a key");
  EVP_PKEY* raw = is_public ? PEM_read_bio_PUBKEY(bio.get(), nullptr, no_passphrase, nullptr)
                            : PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr);
  if (raw == nullptr) {
    throw InvalidArgument("the key file " + named(file) +
                          " holds no readable PEM key (an Ed25519 private or public key, "
                          "unencrypted, is expected)");
  }
  impl->key.reset(raw);
  if (EVP_PKEY_get_base_id(raw) != EVP_PKEY_ED25519) {
    throw InvalidArgument("the key file " + named(file) + " holds a " +
                          std::string(OBJ_nid2sn(EVP_PKEY_get_base_id(raw))) +
                          " key; seals are signed with Ed25519 keys");
  }
  impl->has_private = !is_public;
  impl->public_hex = raw_public_hex(raw);
  return SealKey(std::move(impl));
}

SealKey SealKey::from_public_hex(std::string_view text) {
  unsigned char raw[kPublicKeyBytes];
  if (!unhex(text, kPublicKeyBytes, raw)) {
    throw InvalidArgument("an Ed25519 public key is 64 hex digits, got '" + std::string(text) +
                          "'");
  }
  EVP_PKEY* key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw, sizeof raw);
  if (key == nullptr) throw InvalidArgument("'" + std::string(text) + "' is not an Ed25519 public key");
  auto impl = std::make_shared<Impl>();
  impl->key.reset(key);
  impl->public_hex = raw_public_hex(key);
  return SealKey(std::move(impl));
}

void SealKey::save_private(const std::filesystem::path& file) const {
  if (!impl_->has_private) throw InvalidArgument("this seal key has no private part to save");
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), impl_->key.get(), nullptr, nullptr, 0, nullptr,
                                       nullptr) != 1) {
    throw Error("OpenSSL: cannot encode the private key");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw StorageError("cannot create the key file " + named(file) + ": " +
                       std::strerror(errno) + (errno == EEXIST ? " (keys are never overwritten)" : ""));
  }
  bool ok = true;
  for (long done = 0; ok && done < size;) {
    const ssize_t n = ::write(fd, data + done, static_cast<std::size_t>(size - done));
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += n;
  }
  ok = ::fsync(fd) == 0 && ok;
  ok = ::close(fd) == 0 && ok;
  if (!ok) {
    std::error_code ignored;
    std::filesystem::remove(file, ignored);
    throw StorageError("cannot write the key file " + named(file));
  }
}

void SealKey::save_public(const std::filesystem::path& file) const {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), impl_->key.get()) != 1) {
    throw Error("OpenSSL: cannot encode the public key");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(data, size);
  out.close();
  if (!out) throw StorageError("cannot write the public key file " + named(file));
}

bool SealKey::has_private() const noexcept { return impl_->has_private; }

const std::string& SealKey::public_hex() const noexcept { return impl_->public_hex; }

std::string SealKey::key_id() const {
  unsigned char raw[kPublicKeyBytes];
  unhex(impl_->public_hex, kPublicKeyBytes, raw);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(raw, sizeof raw, digest, &len, EVP_sha256(), nullptr) != 1) {
    throw Error("OpenSSL: SHA-256 digest failed");
  }
  return hex(digest, 8);
}

std::string SealKey::sign(std::string_view message) const {
  if (!impl_->has_private) {
    throw InvalidArgument("cannot sign with a public key: seals are signed with a private key");
  }
  MdCtx ctx(EVP_MD_CTX_new());
  unsigned char sig[kSignatureBytes];
  std::size_t len = sizeof sig;
  if (!ctx ||
      EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, impl_->key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig, &len, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1 ||
      len != kSignatureBytes) {
    throw Error("OpenSSL: Ed25519 signing failed");
  }
  return hex(sig, len);
}

bool SealKey::verify(std::string_view message, std::string_view signature_hex) const {
  unsigned char sig[kSignatureBytes];
  if (!unhex(signature_hex, kSignatureBytes, sig)) return false;
  MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, impl_->key.get()) != 1) {
    throw Error("OpenSSL: cannot start an Ed25519 verification");
  }
  return EVP_DigestVerify(ctx.get(), sig, sizeof sig,
                          reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

// ---- the seal file -------------------------------------------------------------

std::string seal_message(const Seal& seal) {
  std::string m = "annals-seal-v1\n";
  m += "store_id=" + seal.store_id + "\n";
  m += "head_position=" + std::to_string(seal.head_position) + "\n";
  m += "head_hash=" + to_hex(seal.head_hash) + "\n";
  m += "event_count=" + std::to_string(seal.event_count) + "\n";
  m += "sealed_at=" + format_timestamp(seal.sealed_at) + "\n";
  m += "public_key=" + seal.public_key + "\n";
  return m;
}

std::string to_seal_json(const Seal& seal) {
  std::string out = "{\"annals_seal\":1,\"store_id\":" + Json(seal.store_id).dump();
  out += ",\"head_position\":" + std::to_string(seal.head_position);
  out += ",\"head_hash\":\"" + to_hex(seal.head_hash) + "\"";
  out += ",\"event_count\":" + std::to_string(seal.event_count);
  out += ",\"sealed_at\":\"" + format_timestamp(seal.sealed_at) + "\"";
  if (seal.is_signed()) {
    out += ",\"algorithm\":\"ed25519\",\"public_key\":\"" + seal.public_key +
           "\",\"signature\":\"" + seal.signature + "\"";
  } else {
    out += ",\"algorithm\":\"none\"";
  }
  out += "}\n";
  return out;
}

Seal parse_seal(std::string_view text, const std::string& source) {
  const auto fail = [&](const std::string& why) -> InvalidArgument {
    return InvalidArgument("seal " + source + ": " + why);
  };
  if (text.size() > kMaxSealFileBytes) {
    throw fail("longer than " + std::to_string(kMaxSealFileBytes) + " bytes; not a seal");
  }
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::exception&) {
    throw fail("is not JSON (a seal is one JSON object, as `annals seal` writes it)");
  }
  if (!j.is_object()) throw fail("is not a JSON object");
  static const char* const kKnown[] = {"annals_seal", "store_id",  "head_position",
                                       "head_hash",   "event_count", "sealed_at",
                                       "algorithm",   "public_key",  "signature"};
  for (const auto& item : j.items()) {
    const std::string& name = item.key();
    if (std::find_if(std::begin(kKnown), std::end(kKnown),
                     [&](const char* k) { return name == k; }) == std::end(kKnown)) {
      throw fail("unknown field '" + name + "'");
    }
  }
  const auto field = [&](const char* name) -> const Json& {
    if (!j.contains(name)) throw fail("field '" + std::string(name) + "' is missing");
    return j.at(name);
  };
  const auto text_of = [&](const char* name) {
    const Json& v = field(name);
    if (!v.is_string()) throw fail("field '" + std::string(name) + "' must be a string");
    return v.get<std::string>();
  };
  const auto count_of = [&](const char* name) {
    const Json& v = field(name);
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<std::uint64_t>() >
                                                                 static_cast<std::uint64_t>(
                                                                     INT64_MAX)) ||
        v.get<std::int64_t>() < 0) {
      throw fail("field '" + std::string(name) + "' must be an integer of at least 0, got " +
                 v.dump());
    }
    return v.get<std::int64_t>();
  };
  const Json& format = field("annals_seal");
  if (!format.is_number_integer() || format.get<std::int64_t>() != 1) {
    throw fail("field 'annals_seal' is " + format.dump() + "; this build reads seal format 1");
  }
  Seal s;
  s.store_id = text_of("store_id");
  if (s.store_id.empty() || s.store_id.size() > 64) {
    throw fail("field 'store_id' must be a store id (a UUID), got '" + s.store_id + "'");
  }
  s.head_position = count_of("head_position");
  if (!unhex(text_of("head_hash"), s.head_hash.size(), s.head_hash.data())) {
    throw fail("field 'head_hash' must be 64 hex digits");
  }
  s.event_count = count_of("event_count");
  try {
    s.sealed_at = parse_timestamp(text_of("sealed_at"));
  } catch (const InvalidArgument& e) {
    throw fail(std::string("field 'sealed_at' is invalid: ") + e.what());
  }
  const std::string algorithm = text_of("algorithm");
  if (algorithm == "ed25519") {
    s.public_key = text_of("public_key");
    unsigned char raw[kSignatureBytes];
    if (!unhex(s.public_key, kPublicKeyBytes, raw)) {
      throw fail("field 'public_key' must be 64 hex digits");
    }
    s.signature = text_of("signature");
    if (!unhex(s.signature, kSignatureBytes, raw)) {
      throw fail("field 'signature' must be 128 hex digits");
    }
  } else if (algorithm == "none") {
    for (const char* name : {"public_key", "signature"}) {
      if (j.contains(name)) throw fail("field '" + std::string(name) + "' is given, but 'algorithm' is \"none\"");
    }
  } else {
    throw fail("field 'algorithm' must be \"ed25519\" or \"none\", got " + Json(algorithm).dump());
  }
  return s;
}

Seal read_seal_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InvalidArgument("cannot read the seal file " + named(file));
  std::string text;
  text.resize(kMaxSealFileBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) throw InvalidArgument("cannot read the seal file " + named(file));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return parse_seal(text, named(file));
}

// ---- sealing -------------------------------------------------------------------

Seal seal(SqliteEventStore& store, const SealKey* key, const Clock& clock) {
  if (key != nullptr && !key->has_private()) {
    throw InvalidArgument("sealing needs a private key; the key given is a public key");
  }
  const std::string where = "sealing '" + store.path().string() + "'";
  try {
    detail::SqlConnection conn(store.path(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                               std::chrono::milliseconds(30'000));
    detail::SqliteTransaction tx(conn, detail::SqliteTransaction::Mode::immediate);
    {
      Seal s;
      const auto has_identity = conn.query_int(
          "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'store_identity'");
      if (has_identity.value_or(0) == 0) {
        throw StorageError("cannot seal '" + store.path().string() +
                           "': the store has no id (open it writable once to migrate it)");
      }
      s.store_id = conn.query_text("SELECT store_id FROM store_identity WHERE singleton = 1")
                       .value_or("");
      const auto rows = conn.query(
          "SELECT position, hash, (SELECT count(*) FROM events) FROM events "
          "ORDER BY position DESC LIMIT 1");
      if (!rows.empty()) {
        s.head_position = rows[0][0].as_int();
        const std::string& hash = rows[0][1].as_text();
        if (hash.size() != s.head_hash.size()) {
          throw IntegrityError("cannot seal '" + store.path().string() + "': the event at position " +
                                   std::to_string(s.head_position) + " has no valid hash",
                               s.head_position);
        }
        std::copy(hash.begin(), hash.end(), s.head_hash.begin());
        s.event_count = rows[0][2].as_int();
      }
      s.sealed_at = clock.now();
      if (key != nullptr) {
        s.public_key = key->public_hex();
        s.signature = key->sign(seal_message(s));
      }
      auto& insert = conn.statement(
          "INSERT INTO seals (head_position, head_hash, event_count, sealed_at, key_id, seal) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
      detail::ResetOnExit reset(insert);
      insert.bind(1, s.head_position);
      insert.bind(2, s.head_hash.data(), static_cast<int>(s.head_hash.size()));
      insert.bind(3, s.event_count);
      insert.bind(4, to_micros(s.sealed_at));
      if (key != nullptr) insert.bind(5, key->key_id());
      insert.bind(6, to_seal_json(s));
      insert.exec();
      tx.commit();
      return s;
    }
  } catch (const SQLite::Exception& e) {
    throw detail::storage_error(e, where);
  }
}

// ---- checking ------------------------------------------------------------------

std::string_view to_string(SealProblem problem) noexcept {
  switch (problem) {
    case SealProblem::none: return "none";
    case SealProblem::bad_signature: return "bad_signature";
    case SealProblem::wrong_key: return "wrong_key";
    case SealProblem::unsigned_seal: return "unsigned_seal";
    case SealProblem::other_store: return "other_store";
    case SealProblem::truncated: return "truncated";
    case SealProblem::head_differs: return "head_differs";
    case SealProblem::count_differs: return "count_differs";
    case SealProblem::chain_broken: return "chain_broken";
  }
  return "unknown";
}

SealVerifyResult verify_seal(const EventStore& store, const Seal& seal, const SealKey* trusted) {
  SealVerifyResult r;
  const auto fail = [&](SealProblem p, std::string why) {
    r.ok = false;
    r.problem = p;
    r.reason = std::move(why);
    return r;
  };

  if (seal.is_signed()) {
    if (trusted != nullptr && trusted->public_hex() != seal.public_key) {
      return fail(SealProblem::wrong_key,
                  "the seal is signed by another key (" + seal.public_key.substr(0, 16) +
                      "...) than the trusted key " + trusted->key_id());
    }
    bool holds = false;
    try {
      holds = SealKey::from_public_hex(seal.public_key).verify(seal_message(seal), seal.signature);
    } catch (const InvalidArgument&) {
      holds = false;
    }
    if (!holds) {
      return fail(SealProblem::bad_signature,
                  "the seal's signature does not check: the seal was altered or forged");
    }
    r.signature_checked = true;
    r.key_trusted = trusted != nullptr;
  } else if (trusted != nullptr) {
    return fail(SealProblem::unsigned_seal,
                "the seal is not signed, so it cannot show it was made with the trusted key " +
                    trusted->key_id());
  }

  const std::string id = store.store_id();
  if (id != seal.store_id) {
    return fail(SealProblem::other_store,
                "the seal belongs to store " + seal.store_id + ", this store is " +
                    (id.empty() ? std::string("without an id") : id));
  }

  const std::int64_t head = store.head_position();
  r.head_position = head;
  if (head < seal.head_position) {
    return fail(SealProblem::truncated,
                "the store ends at position " + std::to_string(head) + " but the seal covers " +
                    std::to_string(seal.head_position) + " events: " +
                    std::to_string(seal.head_position - head) +
                    " sealed events are missing");
  }
  if (seal.head_position == 0 && seal.head_hash != EventHash{}) {
    return fail(SealProblem::head_differs, "the seal of an empty store names a head hash other than zeros");
  }
  ChainVerifier chain;
  bool head_seen = seal.head_position == 0;
  for (const RecordedEvent& e : store.read_all(1, {}, static_cast<std::uint64_t>(head))) {
    if (!chain.feed(e)) break;
    if (e.position == seal.head_position) {
      head_seen = true;
      if (e.hash != seal.head_hash) {
        r.events_checked = chain.checked();
        r.first_bad_position = e.position;
        return fail(SealProblem::head_differs,
                    "the event at the sealed position " + std::to_string(e.position) +
                        " has hash " + to_hex(e.hash) + ", the seal says " +
                        to_hex(seal.head_hash) + ": history before it was rewritten");
      }
      if (chain.checked() != seal.event_count) {
        r.events_checked = chain.checked();
        return fail(SealProblem::count_differs,
                    "the store holds " + std::to_string(chain.checked()) +
                        " events up to position " + std::to_string(e.position) +
                        ", the seal says " + std::to_string(seal.event_count));
      }
    }
  }
  r.events_checked = chain.checked();
  if (!chain.ok()) {
    r.first_bad_position = chain.failed_at();
    return fail(SealProblem::chain_broken, "the hash chain fails at position " +
                                               std::to_string(chain.failed_at()) + ": " +
                                               chain.reason());
  }
  if (!head_seen) {
    return fail(SealProblem::truncated, "the sealed position " + std::to_string(seal.head_position) +
                                            " was not found in the store");
  }
  if (seal.head_position == 0 && seal.event_count != 0) {
    return fail(SealProblem::count_differs, "the seal of an empty store counts " +
                                                std::to_string(seal.event_count) + " events");
  }
  r.ok = true;
  r.problem = SealProblem::none;
  return r;
}

}  // namespace annals
