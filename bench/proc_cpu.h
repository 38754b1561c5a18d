// CPU time from Linux's /proc stat files, for the benchmarks that report
// what a process or one of its threads spent (user + system).
#ifndef STEPHUB_BENCH_PROC_CPU_H_
#define STEPHUB_BENCH_PROC_CPU_H_

#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"

namespace stephub::bench {

// User + system time recorded in `stat_path` (/proc/PID/stat or
// /proc/PID/task/TID/stat); zero if it cannot be read.
inline absl::Duration CpuTimeOf(const std::string& stat_path) {
  std::ifstream stat(stat_path);
  std::string text((std::istreambuf_iterator<char>(stat)), {});
  // Fields after the command's closing parenthesis (the name may hold
  // spaces); utime and stime are the 14th and 15th of the line.
  const size_t close = text.rfind(')');
  if (close == std::string::npos || close + 2 > text.size()) {
    return absl::ZeroDuration();
  }
  std::vector<std::string> fields = absl::StrSplit(text.substr(close + 2), ' ');
  double utime = 0, stime = 0;
  if (fields.size() <= 13 || !absl::SimpleAtod(fields[11], &utime) ||
      !absl::SimpleAtod(fields[12], &stime)) {
    return absl::ZeroDuration();
  }
  return absl::Seconds((utime + stime) /
                       static_cast<double>(sysconf(_SC_CLK_TCK)));
}

}  // namespace stephub::bench

#endif  // STEPHUB_BENCH_PROC_CPU_H_
