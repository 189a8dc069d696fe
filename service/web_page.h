// The web page served at GET / : type a prompt, start a stream, watch chunks
// play as they arrive with a progress bar, download a video or the session
// state. One self-contained HTML file (service/web/index.html, no CDN),
// compiled into the binary at build time. Pure function; any thread.
#pragma once

#include <string>

namespace ltx::service {

const std::string& web_page_html();

}  // namespace ltx::service
