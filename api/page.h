// api/page.h: the web page served at / (api/page.html) and its script at /page.js (api/page.js),
// compiled in: the page works offline and the binary needs no files beside it.
#pragma once

namespace saem {

extern const char *const page_html;
extern const char *const page_script;

}  // namespace saem
