#pragma once

// The live view's files (index.html, live_view.js, live_view.css in this folder), embedded into
// the binary at build time by embed_web_assets.cmake, so the coordinator serves them without
// reading anything from disk. Immutable static data; safe for concurrent use.

#include <span>
#include <string_view>

namespace sabot {

struct WebAsset {
  std::string_view path;          // "/" for index.html, "/live_view.js", ...
  std::string_view content_type;  // "text/html; charset=utf-8", ...
  std::string_view body;
};

// Every embedded file, in file-name order (index.html also under "/index.html").
std::span<const WebAsset> WebAssets();

// The asset served at `path`, or nullptr.
const WebAsset* FindWebAsset(std::string_view path);

}  // namespace sabot
