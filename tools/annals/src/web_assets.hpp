#pragma once
// The files of the `annals serve` page (src/web/), compiled into the program
// by embed_assets.cmake: the server reads nothing from disk but the store.

#include <span>
#include <string_view>

namespace annals::tool {

/// One file served at `path`.
struct WebAsset {
  std::string_view path;          ///< "/", "/app.js", ...
  std::string_view content_type;  ///< with charset for text
  std::string_view body;
};

/// Every asset; the storage is static. Thread safety: immutable.
std::span<const WebAsset> web_assets() noexcept;

}  // namespace annals::tool
