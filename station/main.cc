// stephub-station: the treatment-bay daemon. Streams a bay's sensors to the
// hub and shows the hub's live feedback.
#include <csignal>
#include <iostream>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "station/sensors/sensors.h"
#include "station/station.h"

ABSL_FLAG(std::string, hub, "127.0.0.1:50051", "hub address (host:port)");
ABSL_FLAG(std::string, station_id, "", "this bay's station id, e.g. bay-1");
ABSL_FLAG(std::string, sensors, "sim",
          "sim, sim:<profile> (level, moderate, trendelenburg) or "
          "replay:<recording dir>");
ABSL_FLAG(uint64_t, seed, 1, "simulator seed (same seed, same patient)");
ABSL_FLAG(bool, exit_after_set, false,
          "exit once the simulated or replayed set is stored at the hub");
ABSL_FLAG(bool, quiet, false, "do not print the hub's live feedback");

namespace {

const char* VerdictText(stephub::v1::Verdict v) {
  switch (v) {
    case stephub::v1::VERDICT_CLEAN:
      return "clean";
    case stephub::v1::VERDICT_PELVIC_DROP:
      return "PELVIC DROP";
    case stephub::v1::VERDICT_PELVIC_HIKE:
      return "PELVIC HIKE";
    default:
      return "-";
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "StepHub station: streams a treatment bay's sensors to the hub.\n"
      "usage: stephub-station --station_id=bay-1 [--hub=HOST:PORT] "
      "[--sensors=sim:moderate|replay:DIR]");
  absl::ParseCommandLine(argc, argv);
  const std::string station_id = absl::GetFlag(FLAGS_station_id);
  if (station_id.empty()) {
    std::cerr << "stephub-station: --station_id is required (e.g. bay-1)\n";
    return 2;
  }
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto source = stephub::station::MakeSensorSource(
      absl::GetFlag(FLAGS_sensors), absl::GetFlag(FLAGS_seed),
      stephub::station::MonotonicMicros());
  if (!source.ok()) {
    std::cerr << "stephub-station: " << source.status().message() << "\n";
    return 2;
  }
  stephub::station::StationOptions options;
  options.hub_address = absl::GetFlag(FLAGS_hub);
  options.station_id = station_id;
  options.exit_after_set = absl::GetFlag(FLAGS_exit_after_set);
  if (!absl::GetFlag(FLAGS_quiet)) {
    options.on_feedback = [station_id](const stephub::v1::StationFeedback& f) {
      if (!f.set_active()) {
        std::cout << station_id << ": no set running" << std::endl;
      } else if (f.repetition_count() == 0) {
        std::cout << station_id << ": set " << f.set_id() << " for "
                  << f.patient_display_name()
                  << " started: stand still, then step down" << std::endl;
      } else {
        const auto& rep = f.last_repetition();
        std::cout << absl::StrFormat("%s: %s rep %d: pelvic drop %+.1f deg %s",
                                     station_id, f.patient_display_name(),
                                     rep.number(), rep.peak_pelvic_drop_deg(),
                                     VerdictText(rep.verdict()))
                  << std::endl;
      }
    };
  }
  stephub::station::Station station(options, *std::move(source));
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    station.Stop();
  });
  stopper.detach();  // the process ends without waiting for a signal
  absl::Status status = station.Run();
  if (!status.ok()) {
    std::cerr << "stephub-station: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
