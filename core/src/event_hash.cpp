#include "annals/core/event_hash.hpp"

#include <openssl/evp.h>

#include <cstring>
#include <memory>

#include "annals/core/error.hpp"

namespace annals {

namespace {

// Writes `v` big-endian at `out` and returns the byte after it.
char* put_u64(char* out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(v >> (56 - 8 * i));
  return out + 8;
}

char* put_i64(char* out, std::int64_t v) { return put_u64(out, static_cast<std::uint64_t>(v)); }

char* put_bytes(char* out, std::string_view bytes) {
  out = put_u64(out, bytes.size());
  if (!bytes.empty()) std::memcpy(out, bytes.data(), bytes.size());
  return out + bytes.size();
}

// Fetched once: in OpenSSL 3 the implicit fetch behind EVP_sha256() costs a
// lookup on every digest.
const EVP_MD* sha256_md() {
  static EVP_MD* md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (fetched == nullptr) throw Error("OpenSSL: SHA-256 is not available");
    return fetched;
  }();
  return md;
}

}  // namespace

std::size_t chained_bytes_size(const RecordedEvent& event) noexcept {
  return EventHash{}.size() + 4 * 8 + 5 * 8 + event.stream_id.size() + event.event_id.size() +
         event.type.size() + event.payload.size() + event.metadata.size();
}

// Plain stores into a buffer sized once: appending piece by piece to a
// std::string cost a few percent of a checked load.
char* write_chained_bytes(char* p, const EventHash& previous, const RecordedEvent& event) noexcept {
  std::memcpy(p, previous.data(), previous.size());
  p += previous.size();
  p = put_i64(p, event.position);
  p = put_i64(p, event.version);
  p = put_i64(p, event.schema_version);
  p = put_i64(p, to_micros(event.recorded_at));
  p = put_bytes(p, event.stream_id);
  p = put_bytes(p, event.event_id);
  p = put_bytes(p, event.type);
  p = put_bytes(p, event.payload);
  return put_bytes(p, event.metadata);
}

EventHash sha256(const char* data, std::size_t size) {
  // A per-thread digest context: EVP_Digest() allocates and frees one per call.
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                                &EVP_MD_CTX_free);
  EventHash out{};
  unsigned int len = 0;
  if (ctx == nullptr || EVP_DigestInit_ex(ctx.get(), sha256_md(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data, size) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), out.data(), &len) != 1 || len != out.size()) {
    throw Error("OpenSSL: SHA-256 digest failed");
  }
  return out;
}

EventHash chain_hash(const EventHash& previous, const RecordedEvent& event) {
  // A per-thread buffer: hashing sits on the append, verify and checked-load
  // hot paths.
  thread_local std::string buf;
  const std::size_t size = chained_bytes_size(event);
  if (buf.size() < size) buf.resize(size);
  write_chained_bytes(buf.data(), previous, event);
  return sha256(buf.data(), size);
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
