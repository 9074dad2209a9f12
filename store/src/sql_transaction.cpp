// SqlValue and SqlTransaction: what does not depend on a database.

#include "annals/core/error.hpp"
#include "annals/store/sqlite_event_store.hpp"

namespace annals {

std::int64_t SqlValue::as_int() const {
  if (!is_int()) throw InvalidArgument("SQL value is not an integer");
  return std::get<std::int64_t>(value_);
}

double SqlValue::as_real() const {
  if (is_int()) return static_cast<double>(std::get<std::int64_t>(value_));
  if (!is_real()) throw InvalidArgument("SQL value is not a number");
  return std::get<double>(value_);
}

const std::string& SqlValue::as_text() const {
  if (!is_text()) throw InvalidArgument("SQL value is not text");
  return std::get<std::string>(value_);
}

std::optional<std::int64_t> SqlTransaction::query_int(std::string_view sql,
                                                      const std::vector<SqlValue>& params) {
  const auto rows = query(sql, params);
  if (rows.empty() || rows.front().empty() || rows.front().front().is_null()) return std::nullopt;
  return rows.front().front().as_int();
}

std::optional<std::string> SqlTransaction::query_text(std::string_view sql,
                                                      const std::vector<SqlValue>& params) {
  const auto rows = query(sql, params);
  if (rows.empty() || rows.front().empty() || rows.front().front().is_null()) return std::nullopt;
  return rows.front().front().as_text();
}

}  // namespace annals
