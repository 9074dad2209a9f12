#pragma once
/// A field list for typed events, so that decoding can read a payload straight
/// into the struct instead of through a nlohmann::json document.
///
///   struct Deposited {
///     static constexpr std::string_view type_name = "bank.Deposited";
///     static constexpr int schema_version = 1;
///     std::int64_t amount = 0;
///     std::string currency;
///   };
///   ANNALS_EVENT_FIELDS(Deposited, amount, currency)
///
/// ANNALS_EVENT_FIELDS(Type, fields...) is NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE
/// (so to_json/from_json exist and behave exactly as that macro's) plus a list
/// of the fields that `decode` uses for its fast path. Like the nlohmann macro
/// it goes in the namespace of Type, after the struct, with 1 to 64 fields.
///
/// The fast path is taken when every listed field is a bool, an arithmetic
/// type other than a character type, or std::string, and Type is default
/// constructible. It decides nothing on its own: whenever the payload is not
/// a plain object holding every field with a value of the field's own kind (a
/// missing field, a value of another type, an integer out of the field's
/// range, a payload over 16 KiB or one simdjson refuses), decode takes the
/// nlohmann path, which gives the result or the SerializationError it always
/// gave. So a type behaves the same whether it uses this macro or the nlohmann
/// one; only the time differs (docs/adr/0006-typed-decode-fast-path.md).
///
/// Types declared with nlohmann's macros or hand-written to_json/from_json
/// keep working unchanged, through the nlohmann path. A typed event with no
/// data members needs neither (see TypedEvent in codec.hpp).
///
/// Thread safety: everything here is reentrant.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

namespace annals::detail {

/// One member of a payload object as the fast decoder sees it: a scalar, or
/// kOther for an array or an object. `string` points into a per-thread
/// buffer and is valid only during the call it is handed to.
struct ScalarView {
  enum class Kind { kNull, kBool, kInt64, kUint64, kDouble, kString, kOther };
  Kind kind = Kind::kOther;
  bool boolean = false;
  std::int64_t int64 = 0;
  std::uint64_t uint64 = 0;
  double number = 0;
  std::string_view string;
};

/// Called for each member of the payload object, in text order; returns false
/// to give up (the caller then takes the nlohmann path).
using MemberVisitor = bool (*)(void* context, std::string_view key, const ScalarView& value);

/// Parses `text` with a per-thread simdjson parser (which validates all of
/// it) and, when it is a JSON object, calls `visit` for each member in order.
/// Returns false, having called `visit` for no member or some, when the text
/// is empty, over 16 KiB, refused by simdjson, not an object, or when `visit`
/// returned false. Throws: what `visit` throws.
bool visit_object_members(std::string_view text, MemberVisitor visit, void* context);

/// One listed field: its JSON name and the member it fills.
template <class T, class M>
struct Field {
  using member_type = M;
  std::string_view name;
  M T::*member;
};

template <class T, class M>
constexpr Field<T, M> field(std::string_view name, M T::*member) {
  return {name, member};
}

template <class M>
inline constexpr bool kFastField =
    std::is_same_v<M, bool> || std::is_same_v<M, std::string> ||
    std::is_floating_point_v<M> ||
    (std::is_integral_v<M> && !std::is_same_v<M, char> && !std::is_same_v<M, wchar_t> &&
     !std::is_same_v<M, char8_t> && !std::is_same_v<M, char16_t> &&
     !std::is_same_v<M, char32_t> && !std::is_same_v<M, signed char> &&
     !std::is_same_v<M, unsigned char>);

/// Stores `v` into `out` when it is exactly what nlohmann's get<M>() would
/// give for that JSON value; false otherwise (the nlohmann path decides).
template <class M>
bool assign_scalar(M& out, const ScalarView& v) {
  using Kind = ScalarView::Kind;
  if constexpr (std::is_same_v<M, bool>) {
    if (v.kind != Kind::kBool) return false;
    out = v.boolean;
    return true;
  } else if constexpr (std::is_same_v<M, std::string>) {
    if (v.kind != Kind::kString) return false;
    out.assign(v.string.data(), v.string.size());
    return true;
  } else if constexpr (std::is_floating_point_v<M>) {
    if (v.kind == Kind::kInt64) {
      out = static_cast<M>(v.int64);
    } else if (v.kind == Kind::kUint64) {
      out = static_cast<M>(v.uint64);
    } else if (v.kind == Kind::kDouble) {
      // "-0" is an integer to nlohmann (0 as a double) but -0.0 to simdjson:
      // any zero with its sign bit set is left to nlohmann.
      if (v.number == 0 && std::signbit(v.number)) return false;
      out = static_cast<M>(v.number);
    } else {
      return false;
    }
    return true;
  } else {
    static_assert(std::is_integral_v<M>);
    if (v.kind == Kind::kInt64) {
      if constexpr (std::is_signed_v<M>) {
        if (v.int64 < std::numeric_limits<M>::min() || v.int64 > std::numeric_limits<M>::max()) {
          return false;
        }
      } else {
        if (v.int64 < 0 || static_cast<std::uint64_t>(v.int64) > std::numeric_limits<M>::max()) {
          return false;
        }
      }
      out = static_cast<M>(v.int64);
      return true;
    }
    if (v.kind == Kind::kUint64) {
      if (v.uint64 > static_cast<std::uint64_t>(std::numeric_limits<M>::max())) return false;
      out = static_cast<M>(v.uint64);
      return true;
    }
    return false;  // a fraction, a bool or null: nlohmann converts or refuses
  }
}

/// True when `number` is a value of the integer type M once its fraction is
/// dropped. nlohmann's get<M>() casts a JSON number with a fraction or an
/// exponent straight to M, which is undefined behaviour outside M's range, so
/// such a value is refused before either path converts it.
template <class M>
bool double_fits(double number) {
  static_assert(std::is_integral_v<M>);
  // Both bounds are exact as doubles: the lowest value is 0 or minus a power
  // of two, and max() + 1 is a power of two (max() itself rounds up to it
  // for 64-bit types). A fraction just below the lowest value is refused,
  // though it would truncate into range: the simpler rule is the safe one.
  const double low = static_cast<double>(std::numeric_limits<M>::lowest());
  const double end = static_cast<double>(std::numeric_limits<M>::max()) + 1.0;
  return std::isfinite(number) && number >= low && number < end;
}

template <class F>
struct field_member;
template <class T, class M>
struct field_member<Field<T, M>> {
  using type = M;
};
template <class Tuple>
struct all_fields_fast : std::false_type {};
template <class... Fs>
struct all_fields_fast<std::tuple<Fs...>>
    : std::bool_constant<(kFastField<typename field_member<Fs>::type> && ...)> {};

/// True when T lists its fields with ANNALS_EVENT_FIELDS and every one of
/// them can take the fast path.
template <class T>
concept FastDecodable =
    std::is_default_constructible_v<T> &&
    requires { annals_event_fields(std::type_identity<T>{}); } &&
    all_fields_fast<decltype(annals_event_fields(std::type_identity<T>{}))>::value;

/// True when T lists its fields with ANNALS_EVENT_FIELDS.
template <class T>
concept HasEventFields = requires { annals_event_fields(std::type_identity<T>{}); };

/// The name of the first integer field of E whose value in `payload` (an
/// object) is a number with a fraction or exponent outside the field's range
/// (see double_fits), or "" when there is none. nlohmann's get<E>() would
/// convert such a value with undefined behaviour, so decode refuses it first.
template <HasEventFields E>
std::string_view integer_field_out_of_range(const nlohmann::json& payload) {
  std::string_view bad;
  if (!payload.is_object()) return bad;
  std::apply(
      [&](const auto&... field) {
        const auto one = [&](const auto& f) {
          using M = typename std::remove_cvref_t<decltype(f)>::member_type;
          if constexpr (std::is_integral_v<M> && !std::is_same_v<M, bool>) {
            const auto it = payload.find(std::string(f.name));
            if (bad.empty() && it != payload.end() && it->is_number_float() &&
                !double_fits<M>(it->template get<double>())) {
              bad = f.name;
            }
          }
        };
        (one(field), ...);
      },
      annals_event_fields(std::type_identity<E>{}));
  return bad;
}

/// Reads `payload` straight into `out`. Returns true when every listed field
/// was present with a value of its own kind, so that `out` equals what
/// nlohmann's get<E>() gives; false (with `out` partly written) otherwise,
/// and the caller must then decode with nlohmann.
/// Throws: std::bad_alloc.
template <FastDecodable E>
bool fast_decode(std::string_view payload, E& out) {
  using Fields = decltype(annals_event_fields(std::type_identity<E>{}));
  constexpr std::size_t kCount = std::tuple_size_v<Fields>;
  static_assert(kCount >= 1 && kCount <= 64);
  constexpr std::uint64_t kAll = kCount == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << kCount) - 1;
  struct Context {
    E* out;
    Fields fields;
    std::uint64_t seen;
  };
  Context context{&out, annals_event_fields(std::type_identity<E>{}), 0};
  const MemberVisitor visit = [](void* raw, std::string_view key, const ScalarView& value) {
    auto& c = *static_cast<Context*>(raw);
    bool ok = true;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      // The first field of that name takes the value; other keys are ignored,
      // as nlohmann's from_json ignores them. A repeated key overwrites, as in
      // nlohmann's document the last of equal keys wins.
      (void)((std::get<I>(c.fields).name == key
                  ? (ok = assign_scalar(c.out->*(std::get<I>(c.fields).member), value),
                     c.seen |= std::uint64_t{1} << I, true)
                  : false) ||
             ...);
    }(std::make_index_sequence<kCount>{});
    return ok;
  };
  return visit_object_members(payload, visit, &context) && context.seen == kAll;
}

}  // namespace annals::detail

#define ANNALS_DETAIL_EVENT_FIELD(member) \
  , std::make_tuple(::annals::detail::field(#member, &annals_event_self::member))

/// Declares Type's JSON fields: NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Type, ...)
/// plus the field list decode's fast path reads (see the top of this file).
#define ANNALS_EVENT_FIELDS(Type, ...)                                           \
  NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Type, __VA_ARGS__)                          \
  [[maybe_unused]] inline auto annals_event_fields(std::type_identity<Type>) {   \
    using annals_event_self = Type;                                              \
    return std::tuple_cat(std::tuple<>()                                         \
        NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(ANNALS_DETAIL_EVENT_FIELD, __VA_ARGS__))); \
  }
