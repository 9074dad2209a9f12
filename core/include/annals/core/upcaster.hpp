#pragma once
/// Upcasters move stored events forward through schema versions, so events
/// written years ago load as today's types. Each step maps the payload of
/// (type, version n) to (type', version n+1); type' is usually type, or a new
/// name when an event was renamed. A read applies steps until none matches.

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "annals/core/event.hpp"

namespace annals {

/// Thread safety: register every step before sharing the chain; after that,
/// concurrent apply() calls are safe (they only read).
class UpcasterChain {
 public:
  using Step = std::function<Json(Json payload)>;

  /// Registers (type, from_version) -> (type, from_version + 1).
  /// Throws: InvalidArgument if a step for (type, from_version) exists or from_version < 1.
  UpcasterChain& add(std::string type, int from_version, Step step);
  /// Registers (type, from_version) -> (new_type, from_version + 1).
  UpcasterChain& add(std::string type, int from_version, std::string new_type, Step step);

  /// Applies every matching step in turn, updating all three in place. Returns
  /// the number of steps applied.
  /// Throws: SerializationError naming the type and version if a step throws or
  /// returns something other than a JSON object.
  int apply(std::string& type, int& schema_version, Json& payload) const;

  bool empty() const noexcept { return steps_.empty(); }

  /// True when a step starts at (type, schema_version), i.e. apply() would
  /// change an event stored with them. Throws: std::bad_alloc.
  bool has_step(std::string_view type, int schema_version) const;

 private:
  struct Target {
    std::string type;
    Step step;
  };
  std::map<std::pair<std::string, int>, Target, std::less<>> steps_;
};

}  // namespace annals
