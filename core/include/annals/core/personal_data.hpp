#pragma once
/// Personal data in events, and how to erase it without breaking the hash
/// chain (crypto-shredding).
///
/// An event type marks the fields that hold personal data and, optionally,
/// names the person they are about (the data subject):
///
///   struct AccountOpened {
///     static constexpr std::string_view type_name = "bank.AccountOpened";
///     static constexpr int schema_version = 1;
///     static constexpr std::array<std::string_view, 1> personal_fields{"owner"};
///     std::string owner;
///     std::string currency;
///     // optional; without it the subject is the one given to encode()
///     // (a Repository gives the aggregate's stream id):
///     // std::string data_subject() const { return customer_id; }
///   };
///
///   EventData data = annals::encode(opened, keys, "account-42");
///   AccountEvent e = annals::decode<AccountEvent>(recorded, keys);
///   keys.forget("account-42");     // from now on e.owner decodes as kErasedText
///
/// encode() replaces each personal field's JSON value with an envelope, a
/// JSON object holding the value encrypted with AES-256-GCM under the
/// subject's key (a fresh random 96-bit nonce per field):
///
///   {"annals_personal":1,"key_id":"<32 hex digits>",
///    "nonce":"<base64, 12 bytes>","ciphertext":"<base64>","tag":"<base64, 16 bytes>"}
///
/// The plaintext is the field's JSON text padded with spaces to a multiple of
/// 16 bytes, so the ciphertext shows a field's length only to within 16
/// bytes. The additional authenticated data is "annals_personal:1:<key_id>".
/// The envelope names the key, not the subject. The type, stream id, event
/// id, metadata and every field not listed stay in clear.
///
/// The hash chain covers the stored envelope, so destroying a key changes no
/// stored byte: verify() still passes, exports carry the envelopes unchanged,
/// and nothing else about the subject's events changes.
///
/// decode(recorded, keys) opens every envelope among the payload's top-level
/// members before upcasting and decoding:
///  - its key is in the key store: the field decodes to its value;
///  - its key was forgotten: the field decodes to a placeholder, the value the
///    field has in a default-constructed event, except that a field whose
///    default JSON is a string decodes as kErasedText ("[erased]"). A type
///    that is not default constructible gets null, which its from_json must
///    accept. Upcasters see a forgotten field as its envelope object;
///  - the key store has no such key and no record of forgetting it, or cannot
///    be read: KeyStoreError naming the key store, so a lost or wrong key
///    store is an error, never a placeholder;
///  - the envelope does not authenticate (altered ciphertext, nonce or tag,
///    or a key store holding another key under that id): IntegrityError
///    naming the event and the field.
/// Payloads without envelopes (events written before a field was marked
/// personal, or types without personal fields) decode as with the plain
/// decode(), and stay in clear: forget() cannot erase them.
///
/// Thread safety: the functions are reentrant; KeyStore implementations are
/// safe for concurrent use (each says so).

#include <array>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "annals/core/codec.hpp"
#include "annals/core/error.hpp"
#include "annals/core/event.hpp"
#include "annals/core/thread_annotations.hpp"
#include "annals/core/upcaster.hpp"

namespace annals {

/// What a personal string field decodes to once its subject was forgotten.
inline constexpr std::string_view kErasedText = "[erased]";

/// A key store is missing, unreadable, not a key store, or does not hold a
/// key an envelope names. The message names the key store (its path), never
/// key material.
class KeyStoreError : public StorageError {
 public:
  using StorageError::StorageError;
};

/// A 256-bit AES key and its id. The key bytes are wiped when the object is
/// destroyed. Thread safety: a plain value.
class DataKey {
 public:
  static constexpr std::size_t kSize = 32;
  using Bytes = std::array<unsigned char, kSize>;

  DataKey(std::string key_id, const Bytes& bytes) : key_id_(std::move(key_id)), bytes_(bytes) {}
  /// A fresh random key (OpenSSL RAND_bytes) with a fresh random id (32 hex
  /// digits). Throws: KeyStoreError when the random generator fails.
  static DataKey generate();
  ~DataKey();
  DataKey(const DataKey&) = default;
  DataKey& operator=(const DataKey&) = default;

  const std::string& key_id() const noexcept { return key_id_; }
  const Bytes& bytes() const noexcept { return bytes_; }

 private:
  std::string key_id_;
  Bytes bytes_;
};

/// What a key store knows about a key id.
enum class KeyState {
  present,    ///< the key is held
  forgotten,  ///< forget() destroyed it (the key store keeps the id as a tombstone)
  unknown,    ///< never held here: another key store, or an older backup of this one
};

struct KeyLookup {
  KeyState state = KeyState::unknown;
  std::optional<DataKey> key;  ///< set when state is present
};

/// Where data subjects' keys live, outside the events. Subject ids follow
/// the rules of stream ids (annals/core/stream_id.hpp); a subject id is kept
/// in clear by the key store until forget(), so use an id, never a name.
///
/// Thread safety: implementations are safe for concurrent use from many
/// threads.
class KeyStore {
 public:
  virtual ~KeyStore() = default;

  /// The subject's key, created (random) when the subject has none. A
  /// subject forgotten earlier gets a new key: what is written from then on
  /// is readable again, what was written before stays erased.
  /// Throws: InvalidArgument for a subject id that breaks the rules above;
  /// KeyStoreError.
  virtual DataKey key_for(std::string_view subject) = 0;

  /// The key with id `key_id`, or whether it was forgotten or never known.
  /// Throws: KeyStoreError when the key store cannot be read (missing,
  /// unreadable, corrupt).
  virtual KeyLookup find(std::string_view key_id) const = 0;

  /// Destroys the subject's key and records its id as forgotten. Returns true
  /// when the subject had a key, false when it had none (never had, or
  /// already forgotten: forget() is idempotent).
  /// Throws: InvalidArgument (subject id), KeyStoreError (nothing changed).
  virtual bool forget(std::string_view subject) = 0;

  /// Names the key store in error messages, e.g. "key store '/srv/bank.db.keys'".
  virtual std::string description() const = 0;

 protected:
  KeyStore() = default;
  KeyStore(const KeyStore&) = default;
  KeyStore& operator=(const KeyStore&) = default;
};

/// A key store in memory, for tests: lost when the object is destroyed.
/// Thread safety: safe for concurrent use (one mutex).
class InMemoryKeyStore final : public KeyStore {
 public:
  DataKey key_for(std::string_view subject) override;
  KeyLookup find(std::string_view key_id) const override;
  bool forget(std::string_view subject) override;
  std::string description() const override { return "in-memory key store"; }

 private:
  mutable detail::Mutex mutex_;
  std::unordered_map<std::string, DataKey> by_subject_ ANNALS_GUARDED_BY(mutex_);
  // key id -> subject
  std::unordered_map<std::string, std::string> subject_of_key_ ANNALS_GUARDED_BY(mutex_);
  std::unordered_set<std::string> forgotten_ ANNALS_GUARDED_BY(mutex_);  // key ids
};

namespace detail {

/// True when `value` is a personal-data envelope (an object with the member
/// "annals_personal").
bool is_personal_envelope(const Json& value) noexcept;

/// Encrypts `value` under `key` into an envelope.
/// Throws: SerializationError when OpenSSL fails.
Json seal_personal_value(const Json& value, const DataKey& key);

/// Replaces each top-level envelope of `payload` (an object) by its value when
/// its key is present; leaves forgotten ones as they are. Returns true when the
/// payload held at least one envelope. `event` names the event in errors.
/// Throws: KeyStoreError, IntegrityError, SerializationError (see the top of
/// this file).
bool open_personal_fields(Json& payload, const KeyStore& keys, const RecordedEvent& event);

/// The subject id that encode() uses, checked.
/// Throws: InvalidArgument naming the event type when it is empty or invalid.
std::string checked_subject(std::string subject, std::string_view type_name);

template <class E>
concept NamesDataSubject = requires(const E& e) {
  { e.data_subject() } -> std::convertible_to<std::string>;
};

/// The placeholder of field `name` of E once its key is forgotten.
template <class E>
Json erased_placeholder(const std::string& name) {
  if constexpr (std::is_default_constructible_v<E> && NlohmannConvertible<E>) {
    Json defaults;
    try {
      defaults = E{};
    } catch (const std::exception&) {
      return nullptr;
    }
    if (defaults.is_object()) {
      const auto it = defaults.find(name);
      if (it != defaults.end()) return it->is_string() ? Json(kErasedText) : *it;
    }
  }
  return nullptr;
}

/// Replaces the envelopes left in `payload` (forgotten keys) with the
/// placeholders of the alternative of V named `type`, or with null when V
/// has none of that name.
template <class V>
void fill_erased_fields(Json& payload, std::string_view type) {
  if (!payload.is_object()) return;
  bool done = false;
  auto one = [&]<class E>(std::type_identity<E>) {
    if (done || type != E::type_name) return;
    done = true;
    for (auto it = payload.begin(); it != payload.end(); ++it) {
      if (is_personal_envelope(*it)) *it = erased_placeholder<E>(it.key());
    }
  };
  [&]<class... Es>(std::type_identity<std::variant<Es...>>) {
    (one(std::type_identity<Es>{}), ...);
  }(std::type_identity<V>{});
  if (!done) {
    for (auto& member : payload) {
      if (is_personal_envelope(member)) member = nullptr;
    }
  }
}

}  // namespace detail

/// Converts a typed event into EventData (as encode() of codec.hpp), each of
/// its personal fields encrypted under the key of its data subject: the
/// event's data_subject() when it has one, else `subject`. An event type
/// without personal fields encodes as with plain encode() and creates no key.
/// Throws: SerializationError (to_json fails, or a listed personal field is
/// not in the event's JSON); InvalidArgument (empty or invalid subject id);
/// KeyStoreError.
template <TypedEvent E>
EventData encode(const E& event, KeyStore& keys, std::string_view subject,
                 const Json& metadata = Json::object()) {
  Json payload = detail::payload_of(event);
  if constexpr (detail::HasPersonalFields<E>) {
    std::string who;
    if constexpr (detail::NamesDataSubject<E>) {
      who = event.data_subject();
    } else {
      who = std::string(subject);
    }
    const DataKey key = keys.key_for(detail::checked_subject(std::move(who), E::type_name));
    for (const auto& name : E::personal_fields) {
      const auto it = payload.find(std::string(std::string_view(name)));
      if (it == payload.end()) {
        throw SerializationError("event of type '" + std::string(E::type_name) +
                                 "' lists personal field '" + std::string(std::string_view(name)) +
                                 "', which its JSON does not have");
      }
      if (!detail::is_personal_envelope(*it)) *it = detail::seal_personal_value(*it, key);
    }
  }
  return EventData::from_json(std::string(E::type_name), payload, metadata, E::schema_version);
}

/// As try_decode() of codec.hpp, opening personal fields with `keys` first
/// (see the top of this file for what a forgotten, unknown or altered field
/// gives).
/// Throws: as try_decode(); KeyStoreError; IntegrityError.
template <EventVariant V>
std::optional<V> try_decode(const RecordedEvent& event, const KeyStore& keys,
                            const UpcasterChain* upcasters = nullptr) {
  // Envelopes are written with this exact key text; a payload without it has
  // none to open (one that escapes the name is not an envelope Annals wrote,
  // and fails to decode as the plain decode() would).
  if (event.payload.find("\"annals_personal\"") == std::string::npos) {
    return try_decode<V>(event, upcasters);
  }
  Json payload = detail::parse_payload(event);
  if (!payload.is_object() || !detail::open_personal_fields(payload, keys, event)) {
    return try_decode<V>(event, upcasters);
  }
  RecordedEvent opened = event;
  if (upcasters != nullptr && !upcasters->empty()) {
    upcasters->apply(opened.type, opened.schema_version, payload);
  }
  detail::fill_erased_fields<V>(payload, opened.type);
  opened.payload = payload.dump();
  return try_decode<V>(opened, nullptr);
}

/// As try_decode() above, but an unknown type throws UnknownEventType.
template <EventVariant V>
V decode(const RecordedEvent& event, const KeyStore& keys,
         const UpcasterChain* upcasters = nullptr) {
  auto decoded = try_decode<V>(event, keys, upcasters);
  if (!decoded) throw UnknownEventType(event.type, event.stream_id, event.version);
  return std::move(*decoded);
}

}  // namespace annals
