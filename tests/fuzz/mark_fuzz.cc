// libFuzzer target: any bytes as the query of a request to /debug/mark (the first byte picks the
// method and whether a browser asks), answered by the real HttpHandler over a real MarkBoard.
// A mark is made only from a valid name, exactly that name; anything else is a 400 or 405 that
// says why; the board never holds more than its capacity.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "http_handler.h"
#include "poolwatch/mark_board.h"

namespace {

using namespace poolwatch;
using namespace poolwatch::exporter;

HandlerSources Sources(MarkBoard& marks) {
  HandlerSources sources;
  sources.marks = &marks;
  return sources;
}

struct Fixture {
  MarkBoard marks{4};
  HttpHandler handler{Sources(marks)};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture fixture;
  if (size == 0) return 0;
  const char* methods[] = {"POST", "GET", "PUT", "HEAD"};
  const std::uint8_t choice = data[0];
  HttpRequest request;
  request.method = methods[choice % 4];
  request.accept = (choice & 4) != 0 ? "text/html,application/xhtml+xml" : "*/*";
  request.target = "/debug/mark?" + std::string(reinterpret_cast<const char*>(data + 1), size - 1);

  const std::uint64_t before = fixture.marks.version();
  const auto response = fixture.handler.HandleQuickly(request);
  if (!response) __builtin_trap();  // always answered at once
  const std::uint64_t after = fixture.marks.version();
  const bool made = after != before;
  if (made != (response->status == 201 || response->status == 303)) __builtin_trap();
  if (request.method != "POST" && response->status != 405) __builtin_trap();
  if (response->status == 400 && !response->text().starts_with("bad mark: ")) __builtin_trap();
  if (response->status != 201 && response->status != 303 && response->status != 400 &&
      response->status != 405) {
    __builtin_trap();
  }
  const std::vector<Mark> marks = fixture.marks.List();
  if (marks.size() > fixture.marks.capacity()) __builtin_trap();
  if (made) {
    const Mark& mark = marks.back();
    if (!MarkBoard::CheckName(mark.name).empty()) __builtin_trap();
    // The name is printable ASCII: it appears in the query, escaped or not.
    if (response->status == 201) {
      const auto json = nlohmann::json::parse(response->text());
      if (json["name"] != mark.name || json["id"] != mark.id) __builtin_trap();
    }
  }
  return 0;
}
