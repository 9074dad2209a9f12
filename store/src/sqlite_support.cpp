#include "sqlite_support.hpp"

#include <SQLiteCpp/Column.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace annals::detail {

StorageError storage_error(const SQLite::Exception& e, const std::string& doing) {
  return StorageError("SQLite error while " + doing + ": " + e.what(), e.getErrorCode(),
                      e.getExtendedErrorCode());
}

bool file_exists(const std::filesystem::path& path, std::string_view what) {
  // The error_code overload: the throwing one raises std::filesystem_error,
  // which is not an annals::Error.
  std::error_code ec;
  const bool exists = std::filesystem::exists(path, ec);
  if (ec) {
    throw StorageError("cannot open " + std::string(what) + " '" + path.string() +
                       "': " + ec.message());
  }
  return exists;
}

void create_private_file(const std::filesystem::path& path, std::string_view what) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);
  } else if (errno != EEXIST) {
    throw StorageError("cannot create " + std::string(what) + " '" + path.string() +
                       "': " + std::strerror(errno));
  }
}

void bind_values(SQLite::Statement& st, const std::vector<SqlValue>& params) {
  for (std::size_t i = 0; i < params.size(); ++i) {
    const int index = static_cast<int>(i) + 1;
    const SqlValue& v = params[i];
    if (v.is_null()) {
      st.bind(index);
    } else if (v.is_int()) {
      st.bind(index, v.as_int());
    } else if (v.is_real()) {
      st.bind(index, v.as_real());
    } else {
      st.bind(index, v.as_text());
    }
  }
}

SqlValue column_value(SQLite::Statement& st, int column) {
  const SQLite::Column c = st.getColumn(column);
  switch (c.getType()) {
    case SQLITE_NULL:
      return SqlValue();
    case SQLITE_INTEGER:
      return SqlValue(c.getInt64());
    case SQLITE_FLOAT:
      return SqlValue(c.getDouble());
    default:  // text, and blobs as their bytes
      return SqlValue(std::string(static_cast<const char*>(c.getBlob()),
                                  static_cast<std::size_t>(c.getBytes())));
  }
}

std::vector<SqlRow> fetch_rows(SQLite::Statement& st) {
  std::vector<SqlRow> rows;
  while (st.executeStep()) {
    SqlRow row;
    row.reserve(static_cast<std::size_t>(st.getColumnCount()));
    for (int c = 0; c < st.getColumnCount(); ++c) row.push_back(column_value(st, c));
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace annals::detail
