#include "annals/core/event_hash.hpp"

#include <openssl/evp.h>

#include <memory>

#include "annals/core/error.hpp"

namespace annals {

namespace {

void put_u64(std::string& out, std::uint64_t v) {
  // One append of 8 bytes: a push_back per byte was a quarter of chain_hash's
  // time on the append path (docs/performance.md).
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(v >> (56 - 8 * i));
  out.append(bytes, sizeof bytes);
}

void put_i64(std::string& out, std::int64_t v) { put_u64(out, static_cast<std::uint64_t>(v)); }

void put_bytes(std::string& out, std::string_view bytes) {
  put_u64(out, bytes.size());
  out.append(bytes);
}

// Fetched once: in OpenSSL 3 the implicit fetch behind EVP_sha256() costs a
// lookup on every digest.
const EVP_MD* sha256() {
  static EVP_MD* md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (fetched == nullptr) throw Error("OpenSSL: SHA-256 is not available");
    return fetched;
  }();
  return md;
}

}  // namespace

EventHash chain_hash(const EventHash& previous, const RecordedEvent& event) {
  // A per-thread buffer: hashing sits on the append and verify hot paths.
  thread_local std::string buf;
  buf.clear();
  buf.append(reinterpret_cast<const char*>(previous.data()), previous.size());
  put_i64(buf, event.position);
  put_i64(buf, event.version);
  put_i64(buf, event.schema_version);
  put_i64(buf, to_micros(event.recorded_at));
  put_bytes(buf, event.stream_id);
  put_bytes(buf, event.event_id);
  put_bytes(buf, event.type);
  put_bytes(buf, event.payload);
  put_bytes(buf, event.metadata);

  // A per-thread digest context too: EVP_Digest() allocates and frees one per call.
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                                &EVP_MD_CTX_free);
  EventHash out{};
  unsigned int len = 0;
  if (ctx == nullptr || EVP_DigestInit_ex(ctx.get(), sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), buf.data(), buf.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), out.data(), &len) != 1 || len != out.size()) {
    throw Error("OpenSSL: SHA-256 digest failed");
  }
  return out;
}

std::string to_hex(const EventHash& hash) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(hash.size() * 2);
  for (auto b : hash) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0x0F]);
  }
  return out;
}

bool ChainVerifier::feed(const RecordedEvent& event) {
  if (!ok()) return false;
  if (event.position != next_position_) {
    failed_at_ = next_position_;
    reason_ = event.position > next_position_
                  ? "event at position " + std::to_string(next_position_) + " is missing"
                  : "position " + std::to_string(event.position) + " is out of order";
    return false;
  }
  const EventHash expected = chain_hash(previous_, event);
  if (expected != event.hash) {
    failed_at_ = event.position;
    reason_ = "hash of event at position " + std::to_string(event.position) + " (stream '" +
              event.stream_id + "', version " + std::to_string(event.version) +
              ") does not match: stored " + to_hex(event.hash) + ", computed " + to_hex(expected);
    return false;
  }
  previous_ = event.hash;
  ++next_position_;
  ++checked_;
  return true;
}

}  // namespace annals
