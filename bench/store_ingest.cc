// Sustained ingest into the clinic store (hub/store): simulated stations at
// full rates (four IMUs at 200 Hz and the plate at 1 kHz, 25 ms batches),
// their batches appended as the hub appends them, at most 256 uncommitted
// per station as the hub allows. Batches arrive on a simulated clock (one
// per 25 ms) and are folded into sample blocks once they are
// --fold_after_minutes old, as the hub's SampleFolder does. Reports samples
// and batches per second, batches per commit, the folding's cost and
// ratio, and the database's growth per station-hour. With --paced the
// batches arrive in real time, as the hub receives them, and the report is
// what the store's writer thread costs per batch (CPU and bytes written).
// Results in docs/BENCHMARKS.md.
#include <time.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bench/proc_cpu.h"
#include "bench/simulated_minute.h"
#include "hub/store/store.h"

ABSL_FLAG(std::string, dir, "/tmp/stephub-store-bench",
          "directory for the database (emptied first)");
ABSL_FLAG(double, hours, 1.0, "hours of data per station");
ABSL_FLAG(int, stations, 1, "stations streaming at once");
ABSL_FLAG(double, fold_after_minutes, 5,
          "fold batches this old into sample blocks (negative: never)");
ABSL_FLAG(bool, paced, false,
          "batches arrive in real time (one per station per 25 ms) rather "
          "than as fast as the store takes them");
ABSL_FLAG(absl::Duration, commit_delay, absl::ZeroDuration(),
          "the store's stream commit delay (the hub's default: 100ms)");

namespace {

using stephub::bench::kBatchUs;
using stephub::bench::OneMinute;
constexpr int kMaxUncommittedPerStation = 256;

// CPU time of this process's thread named `name` (the store's writer names
// its thread), from /proc; zero if there is none.
absl::Duration ThreadCpu(const std::string& name) {
  for (const auto& [tid, thread] :
       stephub::bench::ThreadCpuTimes("/proc/self")) {
    if (thread.name == name) return thread.cpu;
  }
  return absl::ZeroDuration();
}

// CPU time of the calling thread (finer than /proc's clock ticks).
absl::Duration CallerCpu() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return absl::DurationFromTimespec(ts);
}

// Bytes this process has passed to write() and its kin so far.
uint64_t BytesWritten() {
  std::ifstream io("/proc/self/io");
  std::string key;
  uint64_t value = 0;
  while (io >> key >> value) {
    if (key == "wchar:") return value;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string dir = absl::GetFlag(FLAGS_dir);
  const int stations = absl::GetFlag(FLAGS_stations);
  const auto batches_per_station =
      static_cast<int64_t>(absl::GetFlag(FLAGS_hours) * 3600e6 / kBatchUs);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  stephub::store::SqliteStoreOptions options;
  options.stream_commit_delay = absl::GetFlag(FLAGS_commit_delay);
  const bool paced = absl::GetFlag(FLAGS_paced);
  auto store = stephub::store::OpenSqliteStore(dir + "/stephub.db", options);
  if (!store.ok()) {
    std::cerr << store.status() << "\n";
    return 1;
  }
  const std::vector<stephub::v1::SampleBatch> minute = OneMinute(1);
  uint64_t samples_per_minute = 0;
  for (const auto& b : minute) {
    for (const auto& imu : b.imu()) samples_per_minute += imu.t_us_size();
    for (const auto& f : b.force()) samples_per_minute += f.t_us_size();
  }

  std::mutex mu;
  std::condition_variable cv;
  int64_t in_flight = 0;
  uint64_t samples = 0;
  const double fold_after = absl::GetFlag(FLAGS_fold_after_minutes);
  stephub::store::CompactionResult folded;
  absl::Duration folding_time;
  absl::Duration folding_cpu;  // this thread's, as the hub's folder thread
  const absl::Time arrival0 = absl::FromUnixSeconds(1'795'000'020);
  const absl::Time start = absl::Now();
  const absl::Duration writer_cpu0 = ThreadCpu("stephub-store");
  const uint64_t written0 = BytesWritten();
  for (int64_t i = 0; i < batches_per_station; ++i) {
    const absl::Time arrival = arrival0 + i * absl::Microseconds(kBatchUs);
    if (paced) {
      absl::SleepFor(start + i * absl::Microseconds(kBatchUs) - absl::Now());
    }
    if (fold_after >= 0 && i % static_cast<int64_t>(minute.size()) == 0) {
      const absl::Time t = absl::Now();
      const absl::Duration cpu = CallerCpu();
      auto step = (*store)->CompactSamples(arrival - absl::Minutes(fold_after),
                                           1000 * stations);
      if (!step.ok()) {
        std::cerr << step.status() << "\n";
        return 1;
      }
      folding_time += absl::Now() - t;
      folding_cpu += CallerCpu() - cpu;
      folded.blocks += step->blocks;
      folded.batches += step->batches;
      folded.batch_bytes += step->batch_bytes;
      folded.block_bytes += step->block_bytes;
    }
    const auto& proto = minute[i % minute.size()];
    const int64_t shift =
        (i / static_cast<int64_t>(minute.size())) * 60'000'000;
    for (int s = 0; s < stations; ++s) {
      stephub::v1::SampleBatch batch = proto;
      batch.set_seq(i + 1);
      auto shifted = [&](google::protobuf::RepeatedField<int64_t>* t) {
        for (int64_t& v : *t) v += shift;
      };
      for (auto& imu : *batch.mutable_imu()) shifted(imu.mutable_t_us());
      for (auto& f : *batch.mutable_force()) shifted(f.mutable_t_us());
      stephub::store::BatchRecord record = stephub::store::BatchRecordOf(
          batch, absl::StrCat("bay-", s + 1), "bench", arrival);
      samples += record.sample_count;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] {
          return in_flight < kMaxUncommittedPerStation * stations;
        });
        ++in_flight;
      }
      (*store)->AppendBatch(std::move(record), [&](absl::Status st) {
        if (!st.ok()) std::cerr << st << "\n";
        std::lock_guard<std::mutex> lock(mu);
        --in_flight;
        cv.notify_all();
      });
    }
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return in_flight == 0; });
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const absl::Duration writer_cpu = ThreadCpu("stephub-store") - writer_cpu0;
  const auto written = static_cast<double>(BytesWritten() - written0);
  const stephub::store::WriteStats stats = (*store)->write_stats();
  store->reset();  // checkpoints the WAL into the database file
  uintmax_t bytes = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    bytes += entry.file_size();
  }
  const double station_hours = absl::GetFlag(FLAGS_hours) * stations;
  std::cout << absl::StrFormat(
      "%d station(s) x %.2f h: %d batches, %d samples in %.1f s\n"
      "  %.0f samples/s, %.0f batches/s, %.1f batches per commit "
      "(%d commits)\n"
      "  %.0fx real time for %d station(s); database %.1f MiB, %.1f MiB "
      "per station-hour (%d samples/min/station)\n"
      "  folded %d batches into %d blocks, %.3f of their bytes, in %.1f s "
      "(%.1f ms per block, %.1f ms of the folding thread's CPU)\n"
      "  writer thread: %.3f cores, %.2f us of CPU and %.0f bytes written "
      "per batch\n",
      stations, absl::GetFlag(FLAGS_hours), batches_per_station * stations,
      samples, seconds, samples / seconds,
      batches_per_station * stations / seconds,
      static_cast<double>(stats.writes) / stats.commits, stats.commits,
      absl::GetFlag(FLAGS_hours) * 3600 / seconds, stations, bytes / 1048576.0,
      bytes / 1048576.0 / station_hours, samples_per_minute, folded.batches,
      folded.blocks,
      folded.batch_bytes > 0
          ? static_cast<double>(folded.block_bytes) / folded.batch_bytes
          : 0.0,
      absl::ToDoubleSeconds(folding_time),
      folded.blocks > 0
          ? absl::ToDoubleMilliseconds(folding_time) / folded.blocks
          : 0.0,
      folded.blocks > 0
          ? absl::ToDoubleMilliseconds(folding_cpu) / folded.blocks
          : 0.0,
      absl::ToDoubleSeconds(writer_cpu) / seconds,
      absl::ToDoubleMicroseconds(writer_cpu) /
          static_cast<double>(batches_per_station * stations),
      written / static_cast<double>(batches_per_station * stations));
  return 0;
}
