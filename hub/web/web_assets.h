// The dashboard's pages and front-end libraries, built into the hub so that
// it serves them with no files to install and no internet access.
#ifndef STEPHUB_HUB_WEB_WEB_ASSETS_H_
#define STEPHUB_HUB_WEB_WEB_ASSETS_H_

#include "absl/strings/string_view.h"

namespace stephub::web {

struct Asset {
  absl::string_view path;  // "/clinic.html", "/uPlot.iife.min.js"
  absl::string_view content_type;
  absl::string_view data;
};

// nullptr when there is no such asset.
const Asset* FindAsset(absl::string_view path);

}  // namespace stephub::web

#endif  // STEPHUB_HUB_WEB_WEB_ASSETS_H_
