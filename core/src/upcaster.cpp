#include "annals/core/upcaster.hpp"

#include "annals/core/error.hpp"

namespace annals {

UpcasterChain& UpcasterChain::add(std::string type, int from_version, Step step) {
  std::string same = type;
  return add(std::move(type), from_version, std::move(same), std::move(step));
}

UpcasterChain& UpcasterChain::add(std::string type, int from_version, std::string new_type,
                                  Step step) {
  if (from_version < 1) {
    throw InvalidArgument("upcaster for '" + type + "' must start at schema version >= 1, got " +
                          std::to_string(from_version));
  }
  if (!step) throw InvalidArgument("upcaster for '" + type + "' has no function");
  auto key = std::make_pair(type, from_version);
  if (steps_.contains(key)) {
    throw InvalidArgument("an upcaster for '" + type + "' at schema version " +
                          std::to_string(from_version) + " is already registered");
  }
  steps_.emplace(std::move(key), Target{std::move(new_type), std::move(step)});
  return *this;
}

bool UpcasterChain::has_step(std::string_view type, int schema_version) const {
  return steps_.contains(std::make_pair(std::string(type), schema_version));
}

int UpcasterChain::apply(std::string& type, int& schema_version, Json& payload) const {
  int applied = 0;
  for (;;) {
    auto it = steps_.find(std::make_pair(type, schema_version));
    if (it == steps_.end()) return applied;
    Json next;
    try {
      next = it->second.step(std::move(payload));
    } catch (const std::exception& e) {
      throw SerializationError("upcaster for '" + type + "' from schema version " +
                               std::to_string(schema_version) + " failed: " + e.what());
    }
    if (!next.is_object()) {
      throw SerializationError("upcaster for '" + type + "' from schema version " +
                               std::to_string(schema_version) + " returned " + next.type_name() +
                               ", not a JSON object");
    }
    payload = std::move(next);
    type = it->second.type;
    ++schema_version;
    ++applied;
  }
}

}  // namespace annals
