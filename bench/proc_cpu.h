// CPU time from Linux's /proc stat files, for the benchmarks that report
// what a process or one of its threads spent (user + system).
#ifndef STEPHUB_BENCH_PROC_CPU_H_
#define STEPHUB_BENCH_PROC_CPU_H_

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <system_error>
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

// One thread of a process: its name (/proc's comm) and CPU time so far.
struct ThreadCpu {
  std::string name;
  absl::Duration cpu;
};

// The live threads of the process whose /proc directory is `process_dir`
// ("/proc/self", "/proc/PID"), by thread id; empty if it cannot be read.
inline std::map<std::string, ThreadCpu> ThreadCpuTimes(
    const std::string& process_dir) {
  std::map<std::string, ThreadCpu> by_tid;
  std::error_code error;
  for (const auto& task : std::filesystem::directory_iterator(
           std::filesystem::path(process_dir) / "task", error)) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (!std::getline(comm, name)) continue;
    by_tid[task.path().filename().string()] = {
        name, CpuTimeOf((task.path() / "stat").string())};
  }
  return by_tid;
}

}  // namespace stephub::bench

#endif  // STEPHUB_BENCH_PROC_CPU_H_
