#pragma once
/// Typed events: plain structs converted with nlohmann to_json/from_json that
/// name themselves with `static constexpr std::string_view type_name` and
/// `static constexpr int schema_version`.
///
///   struct Deposited {
///     static constexpr std::string_view type_name = "bank.Deposited";
///     static constexpr int schema_version = 1;
///     std::int64_t amount;
///   };
///   NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Deposited, amount)
///
///   using AccountEvent = std::variant<Opened, Deposited, Withdrawn>;
///   EventData data = annals::encode(Deposited{500});
///   AccountEvent e = annals::decode<AccountEvent>(recorded);
///
/// decode picks the variant alternative whose type_name equals the stored type
/// (after upcasting) with a fold over the alternatives: no global registry.
///
/// ANNALS_EVENT_FIELDS(Deposited, amount) in place of the nlohmann macro
/// (annals/core/event_fields.hpp) defines the same to_json/from_json and lets
/// decode read the payload straight into the struct, about ten times faster;
/// whatever that fast path cannot decide goes through nlohmann, so results
/// and errors are the same either way. A typed event with no data members
/// needs no to_json/from_json at all: it encodes as {} and decodes from any
/// object.
///
/// Thread safety: the functions are reentrant.

#include <concepts>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include "annals/core/error.hpp"
#include "annals/core/event.hpp"
#include "annals/core/event_fields.hpp"
#include "annals/core/upcaster.hpp"

namespace annals {

namespace detail {
/// E converts to and from JSON with nlohmann (to_json/from_json, by hand or
/// by NLOHMANN_DEFINE_TYPE_* or ANNALS_EVENT_FIELDS).
template <class E>
concept NlohmannConvertible = requires(const E& e, Json& j, const Json& cj) {
  nlohmann::to_json(j, e);
  cj.template get<E>();
};
/// E has no data members: it encodes as {} and decodes from any object,
/// without to_json/from_json.
template <class E>
concept FieldlessEvent = std::is_empty_v<E> && std::is_default_constructible_v<E>;
/// E marks some of its fields as personal data (`static constexpr` range of
/// field names `personal_fields`; see annals/core/personal_data.hpp).
template <class E>
concept HasPersonalFields = requires {
  { *std::begin(E::personal_fields) } -> std::convertible_to<std::string_view>;
};
}  // namespace detail

/// A typed event: a type name, a schema version, and either nlohmann
/// conversions or no data members at all.
template <class E>
concept TypedEvent = requires {
  { E::type_name } -> std::convertible_to<std::string_view>;
  { E::schema_version } -> std::convertible_to<int>;
}
&&(detail::NlohmannConvertible<E> || detail::FieldlessEvent<E>);

namespace detail {
template <class V>
struct is_typed_variant : std::false_type {};
template <TypedEvent... Es>
struct is_typed_variant<std::variant<Es...>> : std::true_type {};

[[noreturn]] void throw_decode_error(const RecordedEvent& event, std::string_view why);
[[noreturn]] void throw_schema_mismatch(const RecordedEvent& event, std::string_view type,
                                        int stored, int expected);
/// The event's payload parsed; SerializationError naming the event when it is
/// not JSON or is nested deeper than kMaxJsonDepth.
Json parse_payload(const RecordedEvent& event);

/// The alternative of V named by the event's type, read straight from its
/// payload text when that alternative lists its fields (ANNALS_EVENT_FIELDS)
/// or has none, the schema versions match and the payload is a plain object
/// holding every field with a value of the field's kind. std::nullopt means
/// "not decided here": the caller decodes with nlohmann, which then gives the
/// same value or the error it always gave.
template <class V>
std::optional<V> try_fast_decode(const RecordedEvent& event) {
  std::optional<V> result;
  auto try_one = [&]<class E>(std::type_identity<E>) {
    if constexpr (FastDecodable<E> || FieldlessEvent<E>) {
      if (result || E::schema_version != event.schema_version || event.type != E::type_name) {
        return;
      }
      if constexpr (FieldlessEvent<E> && !FastDecodable<E>) {
        const MemberVisitor any = [](void*, std::string_view, const ScalarView&) { return true; };
        if (visit_object_members(event.payload, any, nullptr)) result.emplace(std::in_place_type<E>);
      } else {
        E decoded{};
        if (fast_decode(event.payload, decoded)) result.emplace(std::in_place_type<E>, std::move(decoded));
      }
    }
  };
  [&]<class... Es>(std::type_identity<std::variant<Es...>>) {
    (try_one(std::type_identity<Es>{}), ...);
  }(std::type_identity<V>{});
  return result;
}
}  // namespace detail

/// A std::variant whose alternatives are all typed events.
template <class V>
concept EventVariant = detail::is_typed_variant<V>::value;

namespace detail {
/// The JSON object of a typed event, as it is.
/// Throws: SerializationError if to_json fails or does not give an object.
template <TypedEvent E>
Json payload_of(const E& event) {
  Json payload;
  try {
    if constexpr (detail::NlohmannConvertible<E>) {
      payload = event;
    } else {
      payload = Json::object();
    }
  } catch (const std::exception& e) {
    throw SerializationError("cannot encode event of type '" + std::string(E::type_name) +
                             "': " + e.what());
  }
  if (!payload.is_object()) {
    throw SerializationError("event of type '" + std::string(E::type_name) +
                             "' must encode to a JSON object, got " + payload.type_name());
  }
  return payload;
}
}  // namespace detail

/// Converts a typed event into EventData. Its event_id is left empty: the
/// store generates a UUIDv7 at append. Set one (new_event_id()) before the
/// append to make it retryable. An event type that marks personal fields does not compile here: encode it with a
/// KeyStore (annals/core/personal_data.hpp), so that its personal data is
/// never stored in clear by mistake.
/// Throws: SerializationError if to_json fails or does not give an object.
template <TypedEvent E>
EventData encode(const E& event, const Json& metadata = Json::object()) {
  static_assert(!detail::HasPersonalFields<E>,
                "this event type marks personal fields: encode it with a KeyStore "
                "(annals/core/personal_data.hpp)");
  return EventData::from_json(std::string(E::type_name), detail::payload_of(event), metadata,
                              E::schema_version);
}

/// Decodes a recorded event into the variant alternative named by its type, or
/// std::nullopt when no alternative has that type.
/// Throws: SerializationError naming the stream, version and type if the payload
/// does not parse or is nested deeper than kMaxJsonDepth, upcasting fails, the schema version after upcasting differs
/// from the alternative's, or from_json fails.
template <EventVariant V>
std::optional<V> try_decode(const RecordedEvent& event, const UpcasterChain* upcasters = nullptr) {
  if (upcasters == nullptr || upcasters->empty() ||
      !upcasters->has_step(event.type, event.schema_version)) {
    if (auto fast = detail::try_fast_decode<V>(event)) return fast;
  }
  std::string type = event.type;
  int version = event.schema_version;
  Json payload = detail::parse_payload(event);
  if (upcasters != nullptr && !upcasters->empty()) upcasters->apply(type, version, payload);

  std::optional<V> result;
  auto try_one = [&]<class E>(std::type_identity<E>) {
    if (result || type != E::type_name) return;
    if (version != E::schema_version) {
      detail::throw_schema_mismatch(event, type, version, E::schema_version);
    }
    try {
      if constexpr (detail::NlohmannConvertible<E>) {
        if constexpr (detail::HasEventFields<E>) {
          if (const auto bad = detail::integer_field_out_of_range<E>(payload); !bad.empty()) {
            detail::throw_decode_error(event, "field '" + std::string(bad) + "' holds " +
                                                  payload.at(std::string(bad)).dump() +
                                                  ", outside the range of its integer type");
          }
        }
        result.emplace(std::in_place_type<E>, payload.template get<E>());
      } else {
        if (!payload.is_object()) {
          detail::throw_decode_error(event, std::string("payload must be a JSON object, got ") +
                                                payload.type_name());
        }
        result.emplace(std::in_place_type<E>);
      }
    } catch (const SerializationError&) {
      throw;
    } catch (const std::exception& e) {
      detail::throw_decode_error(event, e.what());
    }
  };
  [&]<class... Es>(std::type_identity<std::variant<Es...>>) {
    (try_one(std::type_identity<Es>{}), ...);
  }(std::type_identity<V>{});
  return result;
}

/// As try_decode, but an unknown type throws UnknownEventType naming the type,
/// stream and version.
template <EventVariant V>
V decode(const RecordedEvent& event, const UpcasterChain* upcasters = nullptr) {
  auto decoded = try_decode<V>(event, upcasters);
  if (!decoded) throw UnknownEventType(event.type, event.stream_id, event.version);
  return std::move(*decoded);
}

}  // namespace annals
