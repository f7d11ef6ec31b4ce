// api/page.h: the web page served at / (api/page.html, compiled in: the page works offline and
// the binary needs no files beside it).
#pragma once

namespace saem {

extern const char *const page_html;

}  // namespace saem
