// Drives an io_context in short slices until a condition holds, with an
// overall deadline so that a stuck driver fails its test instead of hanging.
#ifndef STEPHUB_STATION_SENSORS_TESTING_RUN_UNTIL_H_
#define STEPHUB_STATION_SENSORS_TESTING_RUN_UNTIL_H_

#include <chrono>
#include <functional>

#include "boost/asio/io_context.hpp"

namespace stephub::station::testing {

// Runs `io` until done() holds (true) or the deadline passes (false).
// pump() runs before each check, e.g. to write more fake device bytes.
inline bool RunUntil(
    boost::asio::io_context& io, const std::function<bool()>& done,
    const std::function<void()>& pump = nullptr,
    std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (true) {
    if (pump) pump();
    if (done()) return true;
    if (std::chrono::steady_clock::now() > end) return false;
    if (io.stopped()) io.restart();
    io.run_for(std::chrono::milliseconds(2));
  }
}

}  // namespace stephub::station::testing

#endif  // STEPHUB_STATION_SENSORS_TESTING_RUN_UNTIL_H_
