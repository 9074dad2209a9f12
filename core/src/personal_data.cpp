#include "annals/core/personal_data.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>
#include <vector>

#include "annals/core/stream_id.hpp"

namespace annals {

namespace {

constexpr std::string_view kMarker = "annals_personal";
constexpr int kFormat = 1;
constexpr std::size_t kNonceBytes = 12;
constexpr std::size_t kTagBytes = 16;
constexpr std::size_t kPadding = 16;

struct CipherFree {
  void operator()(EVP_CIPHER_CTX* ctx) const noexcept { EVP_CIPHER_CTX_free(ctx); }
};
using Cipher = std::unique_ptr<EVP_CIPHER_CTX, CipherFree>;

// Wipes a buffer that held plaintext when it goes out of scope.
struct Wipe {
  std::string& text;
  ~Wipe() { OPENSSL_cleanse(text.data(), text.size()); }
};

std::string aad_of(const std::string& key_id) {
  return std::string(kMarker) + ":" + std::to_string(kFormat) + ":" + key_id;
}

std::string base64(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data,
                                static_cast<int>(size));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// Strict base64 (with padding): nullopt for anything else.
std::optional<std::vector<unsigned char>> unbase64(const std::string& text) {
  if (text.size() % 4 != 0) return std::nullopt;
  for (const char c : text) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '/' || c == '=';
    if (!ok) return std::nullopt;
  }
  std::vector<unsigned char> out(text.size() / 4 * 3);
  if (text.empty()) return out;
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  std::size_t pad = 0;
  if (text.back() == '=') ++pad;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++pad;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

std::string where(const RecordedEvent& event, const std::string& field) {
  std::string out = "personal field '" + field + "' of event '" + event.type + "'";
  if (!event.stream_id.empty()) {
    out += " in stream '" + event.stream_id + "' at version " + std::to_string(event.version);
  }
  return out;
}

[[noreturn]] void malformed(const RecordedEvent& event, const std::string& field,
                            const std::string& why) {
  throw SerializationError("cannot decode " + where(event, field) +
                           ": malformed personal-data envelope (" + why + ")");
}

std::vector<unsigned char> member_bytes(const Json& envelope, const char* name,
                                        const RecordedEvent& event, const std::string& field) {
  const auto it = envelope.find(name);
  if (it == envelope.end() || !it->is_string()) {
    malformed(event, field, std::string("'") + name + "' is missing or not a string");
  }
  auto bytes = unbase64(it->get<std::string>());
  if (!bytes) malformed(event, field, std::string("'") + name + "' is not base64");
  return std::move(*bytes);
}

}  // namespace

DataKey DataKey::generate() {
  Bytes bytes{};
  std::array<unsigned char, 16> id{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1 ||
      RAND_bytes(id.data(), static_cast<int>(id.size())) != 1) {
    OPENSSL_cleanse(bytes.data(), bytes.size());
    throw KeyStoreError("cannot create a data key: the random generator failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string key_id;
  for (const unsigned char b : id) {
    key_id += kHex[b >> 4];
    key_id += kHex[b & 15];
  }
  DataKey key(std::move(key_id), bytes);
  OPENSSL_cleanse(bytes.data(), bytes.size());
  return key;
}

DataKey::~DataKey() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }

DataKey InMemoryKeyStore::key_for(std::string_view subject) {
  validate_stream_id(subject);
  detail::MutexLock lock(mutex_);
  const std::string s(subject);
  if (const auto it = by_subject_.find(s); it != by_subject_.end()) return it->second;
  DataKey key = DataKey::generate();
  subject_of_key_.emplace(key.key_id(), s);
  by_subject_.emplace(s, key);
  return key;
}

KeyLookup InMemoryKeyStore::find(std::string_view key_id) const {
  detail::MutexLock lock(mutex_);
  const std::string id(key_id);
  if (forgotten_.count(id) != 0) return KeyLookup{KeyState::forgotten, std::nullopt};
  const auto subject = subject_of_key_.find(id);
  if (subject == subject_of_key_.end()) return KeyLookup{KeyState::unknown, std::nullopt};
  return KeyLookup{KeyState::present, by_subject_.at(subject->second)};
}

bool InMemoryKeyStore::forget(std::string_view subject) {
  validate_stream_id(subject);
  detail::MutexLock lock(mutex_);
  const auto it = by_subject_.find(std::string(subject));
  if (it == by_subject_.end()) return false;
  forgotten_.insert(it->second.key_id());
  subject_of_key_.erase(it->second.key_id());
  by_subject_.erase(it);
  return true;
}

namespace detail {

bool is_personal_envelope(const Json& value) noexcept {
  return value.is_object() && value.contains(kMarker);
}

std::string checked_subject(std::string subject, std::string_view type_name) {
  if (subject.empty()) {
    throw InvalidArgument("event of type '" + std::string(type_name) +
                          "' has personal fields but no data subject: give encode() a subject "
                          "or the type a data_subject()");
  }
  validate_stream_id(subject);
  return subject;
}

Json seal_personal_value(const Json& value, const DataKey& key) {
  std::string plain = value.dump();
  const Wipe wipe{plain};
  plain.append(kPadding - plain.size() % kPadding, ' ');  // JSON ignores trailing spaces

  std::array<unsigned char, kNonceBytes> nonce{};
  if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1) {
    throw SerializationError("cannot encrypt a personal field: the random generator failed");
  }
  const std::string aad = aad_of(key.key_id());
  std::vector<unsigned char> cipher(plain.size());
  std::array<unsigned char, kTagBytes> tag{};
  const Cipher ctx(EVP_CIPHER_CTX_new());
  int n = 0;
  int total = 0;
  const bool ok =
      ctx && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) == 1 &&
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key.bytes().data(), nonce.data()) == 1 &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &n, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) == 1 &&
      EVP_EncryptUpdate(ctx.get(), cipher.data(), &n,
                        reinterpret_cast<const unsigned char*>(plain.data()),
                        static_cast<int>(plain.size())) == 1 &&
      (total = n, EVP_EncryptFinal_ex(ctx.get(), cipher.data() + total, &n) == 1) &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, tag.data()) == 1;
  if (!ok) throw SerializationError("cannot encrypt a personal field: OpenSSL failed");
  total += n;
  return Json{{kMarker, kFormat},
              {"key_id", key.key_id()},
              {"nonce", base64(nonce.data(), nonce.size())},
              {"ciphertext", base64(cipher.data(), static_cast<std::size_t>(total))},
              {"tag", base64(tag.data(), tag.size())}};
}

namespace {

// The plaintext JSON of one envelope, or nullopt when its key was forgotten.
std::optional<Json> open_one(const Json& envelope, const KeyStore& keys,
                             const RecordedEvent& event, const std::string& field) {
  const auto format = envelope.find(kMarker);
  if (!format->is_number_integer() || format->get<std::int64_t>() != kFormat) {
    malformed(event, field, "unknown format " + format->dump());
  }
  const auto id = envelope.find("key_id");
  if (id == envelope.end() || !id->is_string() || id->get<std::string>().empty()) {
    malformed(event, field, "'key_id' is missing or not a string");
  }
  const std::string key_id = id->get<std::string>();
  const auto nonce = member_bytes(envelope, "nonce", event, field);
  const auto cipher = member_bytes(envelope, "ciphertext", event, field);
  const auto tag = member_bytes(envelope, "tag", event, field);
  if (nonce.size() != kNonceBytes) malformed(event, field, "the nonce is not 12 bytes");
  if (tag.size() != kTagBytes) malformed(event, field, "the tag is not 16 bytes");

  const KeyLookup lookup = keys.find(key_id);
  if (lookup.state == KeyState::forgotten) return std::nullopt;
  if (lookup.state == KeyState::unknown || !lookup.key) {
    throw KeyStoreError(keys.description() + " has no key '" + key_id + "' for " +
                        where(event, field) +
                        " and no record of forgetting it: it is not the key store these events "
                        "were written with, or a backup older than them");
  }
  const std::string aad = aad_of(key_id);
  std::string plain(cipher.size(), '\0');
  const Wipe wipe{plain};
  const Cipher ctx(EVP_CIPHER_CTX_new());
  int n = 0;
  int total = 0;
  const bool setup =
      ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) == 1 &&
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, lookup.key->bytes().data(), nonce.data()) ==
          1 &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &n, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) == 1 &&
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &n,
                        cipher.data(), static_cast<int>(cipher.size())) == 1 &&
      (total = n, EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes,
                                      const_cast<unsigned char*>(tag.data())) == 1);
  if (!setup) throw SerializationError("cannot decrypt " + where(event, field) + ": OpenSSL failed");
  if (EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()) + total, &n) !=
      1) {
    throw IntegrityError("cannot decrypt " + where(event, field) + " with key '" + key_id +
                             "' of " + keys.description() +
                             ": the authentication tag does not match (the stored ciphertext "
                             "was altered, or the key store holds another key under this id)",
                         event.position);
  }
  plain.resize(static_cast<std::size_t>(total + n));
  try {
    return Json::parse(plain);
  } catch (const std::exception&) {
    malformed(event, field, "the decrypted value is not JSON");
  }
}

}  // namespace

bool open_personal_fields(Json& payload, const KeyStore& keys, const RecordedEvent& event) {
  bool any = false;
  for (auto it = payload.begin(); it != payload.end(); ++it) {
    if (!is_personal_envelope(*it)) continue;
    any = true;
    if (auto value = open_one(*it, keys, event, it.key())) *it = std::move(*value);
  }
  return any;
}

}  // namespace detail
}  // namespace annals
