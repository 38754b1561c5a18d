// stephub-station: the treatment-bay daemon. Reads the bay's sensors,
// spools every batch on disk, streams them to the hub and shows the hub's
// live feedback. Configured by a text-format file (--config); flags
// override single fields of it.
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <iostream>
#include <optional>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/process_setup.h"
#include "google/protobuf/text_format.h"
#include "station/config.h"
#include "station/sensors/station_sources.h"
#include "station/station.h"

ABSL_FLAG(std::string, config, "",
          "station config file (protobuf text format, see "
          "deploy/station.textproto); the flags below override it");
ABSL_FLAG(std::optional<std::string>, hub, std::nullopt,
          "hub address (host:port)");
ABSL_FLAG(std::optional<std::string>, station_id, std::nullopt,
          "this bay's station id, e.g. bay-1");
ABSL_FLAG(std::optional<std::string>, sensors, std::nullopt,
          "replace the configured sensors with sim:<profile> (level, "
          "moderate, trendelenburg, valgus, touchdown, fast, hike, lean) or "
          "replay:<recording dir>");
ABSL_FLAG(std::optional<uint64_t>, seed, std::nullopt,
          "simulator seed (same seed, same patient)");
ABSL_FLAG(std::optional<std::string>, spool_dir, std::nullopt,
          "spool directory (default /var/lib/stephub-station/spool)");
ABSL_FLAG(std::optional<std::string>, log_level, std::nullopt,
          "debug, info, warning or error");
ABSL_FLAG(bool, as_fast_as_possible, false,
          "replay or simulate on a virtual clock, as fast as the hub "
          "acknowledges, instead of in real time");
ABSL_FLAG(bool, exit_after_set, false,
          "exit once the simulated or replayed set is stored at the hub");
ABSL_FLAG(bool, check_config, false,
          "validate the configuration, print it with defaults filled in, "
          "and exit");
ABSL_FLAG(bool, quiet, false, "do not log the hub's live feedback");
ABSL_FLAG(std::optional<std::string>, tls_ca_file, std::nullopt,
          "the clinic CA's certificate (default /etc/stephub/tls/ca.crt)");
ABSL_FLAG(std::optional<std::string>, tls_cert_file, std::nullopt,
          "this station's certificate (default "
          "/etc/stephub/tls/STATION_ID.crt; `stephub certs station ID`)");
ABSL_FLAG(
    std::optional<std::string>, tls_key_file, std::nullopt,
    "this station's private key (default /etc/stephub/tls/STATION_ID.key)");
ABSL_FLAG(bool, insecure_dev, false,
          "plaintext to a hub run with --insecure-dev: development only");

namespace {

using stephub::Log;
using stephub::LogLevel;

const char* VerdictText(stephub::v1::Verdict v) {
  switch (v) {
    case stephub::v1::VERDICT_CLEAN:
      return "clean";
    case stephub::v1::VERDICT_PELVIC_DROP:
      return "PELVIC DROP";
    case stephub::v1::VERDICT_PELVIC_HIKE:
      return "PELVIC HIKE";
    case stephub::v1::VERDICT_NOT_ASSESSED:
      return "pelvis not assessed";
    default:
      return "-";
  }
}

// The config file (if any) with flags applied on top, defaults filled in,
// and validated.
absl::StatusOr<stephub::v1::StationConfig> EffectiveConfig() {
  stephub::v1::StationConfig config;
  if (!absl::GetFlag(FLAGS_config).empty()) {
    auto loaded =
        stephub::station::LoadStationConfig(absl::GetFlag(FLAGS_config));
    if (!loaded.ok()) return loaded.status();
    config = *std::move(loaded);
  }
  if (auto v = absl::GetFlag(FLAGS_hub)) config.set_hub_address(*v);
  if (auto v = absl::GetFlag(FLAGS_station_id)) config.set_station_id(*v);
  if (auto v = absl::GetFlag(FLAGS_spool_dir)) {
    config.mutable_spool()->set_dir(*v);
  }
  if (auto v = absl::GetFlag(FLAGS_log_level)) config.set_log_level(*v);
  if (auto v = absl::GetFlag(FLAGS_tls_ca_file)) {
    config.mutable_link()->set_tls_ca_file(*v);
  }
  if (auto v = absl::GetFlag(FLAGS_tls_cert_file)) {
    config.mutable_link()->set_tls_cert_file(*v);
  }
  if (auto v = absl::GetFlag(FLAGS_tls_key_file)) {
    config.mutable_link()->set_tls_key_file(*v);
  }
  if (absl::GetFlag(FLAGS_insecure_dev)) {
    config.mutable_link()->set_insecure_dev(true);
  }
  if (auto spec = absl::GetFlag(FLAGS_sensors)) {
    config.clear_sensors();
    auto* sensor = config.add_sensors();
    if (*spec == "sim" || absl::StartsWith(*spec, "sim:")) {
      sensor->mutable_sim()->set_profile(*spec == "sim" ? "" : spec->substr(4));
    } else if (absl::StartsWith(*spec, "replay:")) {
      sensor->mutable_replay()->set_dir(spec->substr(7));
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--sensors=", *spec,
                       ": use sim, sim:<profile> or replay:<recording dir>"));
    }
  }
  if (auto seed = absl::GetFlag(FLAGS_seed)) {
    for (auto& sensor : *config.mutable_sensors()) {
      if (sensor.has_sim()) sensor.mutable_sim()->set_seed(*seed);
    }
  }
  if (absl::GetFlag(FLAGS_as_fast_as_possible)) {
    for (auto& sensor : *config.mutable_sensors()) {
      if (sensor.has_replay()) {
        sensor.mutable_replay()->set_as_fast_as_possible(true);
      }
    }
  }
  stephub::station::ApplyStationDefaults(&config);
  if (auto s = stephub::station::ValidateStationConfig(config); !s.ok()) {
    const std::string where = absl::GetFlag(FLAGS_config).empty()
                                  ? std::string("configuration")
                                  : absl::GetFlag(FLAGS_config);
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", s.message()));
  }
  return config;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "StepHub station: streams a treatment bay's sensors to the hub.\n"
      "usage: stephub-station --config=/etc/stephub/station.textproto\n"
      "       stephub-station --station_id=bay-1 --spool_dir=DIR "
      "[--hub=HOST:PORT] [--sensors=sim:moderate|replay:DIR]\n"
      "       [--tls_ca_file=F --tls_cert_file=F --tls_key_file=F | "
      "--insecure-dev]");
  stephub::ConfigureServingProcess();
  stephub::ParseFlagsAcceptingDashes(argc, argv);
  auto config = EffectiveConfig();
  if (!config.ok()) {
    std::cerr << "stephub-station: " << config.status().message() << "\n";
    return 2;
  }
  // The certificate files are checked here too, so that --check_config
  // finds a wrong or missing one before the bay is in use.
  auto tls = stephub::station::LoadStationTls(*config, absl::Now());
  if (!tls.ok()) {
    std::cerr << "stephub-station: " << tls.status().message() << "\n";
    return 2;
  }
  if (absl::GetFlag(FLAGS_check_config)) {
    std::string text;
    google::protobuf::TextFormat::PrintToString(*config, &text);
    std::cout << text;
    return 0;
  }
  stephub::SetLogLevel(*stephub::ParseLogLevel(config->log_level()));
  stephub::SetLogContext("station", config->station_id());

  boost::asio::io_context io;
  auto source = stephub::station::MakeStationSources(*config, io);
  if (!source.ok()) {
    std::cerr << "stephub-station: " << source.status().message() << "\n";
    return 2;
  }

  bool virtual_clock = absl::GetFlag(FLAGS_as_fast_as_possible);
  for (const auto& sensor : config->sensors()) {
    virtual_clock |=
        sensor.has_replay() && sensor.replay().as_fast_as_possible();
  }
  stephub::station::StationOptions options;
  options.hub_address = config->hub_address();
  options.station_id = config->station_id();
  options.tls_ca_cert_pem = tls->ca_cert_pem;
  options.tls_identity = tls->identity;
  options.insecure_dev = config->link().insecure_dev();
  if (options.insecure_dev) {
    Log(LogLevel::kWarning, "insecure_dev")
        .With("warning",
              "PLAINTEXT link to the hub: development only, never on a "
              "clinic network");
  }
  options.batch_period = absl::Milliseconds(config->batch_period_ms());
  options.spool.dir = config->spool().dir();
  options.current_set_file = config->spool().dir() + ".current_set";
  options.spool.max_bytes = config->spool().max_bytes();
  options.spool.segment_bytes = config->spool().segment_bytes();
  options.spool.sync_interval =
      absl::Milliseconds(config->spool().sync_interval_ms());
  options.max_backoff = absl::Milliseconds(config->link().max_backoff_ms());
  options.keepalive_time =
      absl::Milliseconds(config->link().keepalive_time_ms());
  options.keepalive_timeout =
      absl::Milliseconds(config->link().keepalive_timeout_ms());
  options.clock_ping_interval =
      absl::Milliseconds(config->link().clock_ping_interval_ms());
  options.exit_after_set = absl::GetFlag(FLAGS_exit_after_set);
  if (config->has_calibration_movement()) {
    options.calibration_movement = config->calibration_movement();
  }
  options.real_time = !virtual_clock;
  if (!absl::GetFlag(FLAGS_quiet)) {
    options.on_feedback = [](const stephub::v1::StationFeedback& f) {
      if (!f.set_active()) {
        Log(LogLevel::kInfo, "feedback").With("set", "none running");
      } else if (f.repetition_count() == 0) {
        Log(LogLevel::kInfo, "feedback")
            .With("set_id", f.set_id())
            .With("patient", f.patient_display_name())
            .With("cue", f.cue());
      } else {
        const auto& rep = f.last_repetition();
        Log(LogLevel::kInfo, "feedback")
            .With("set_id", f.set_id())
            .With("patient", f.patient_display_name())
            .With("rep", rep.number())
            .With("pelvic_drop_deg",
                  absl::StrFormat("%+.1f", rep.peak_pelvic_drop_deg()))
            .With("verdict", VerdictText(rep.verdict()));
      }
    };
  }

  stephub::station::Station station(io, options, *std::move(source));
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    Log(LogLevel::kInfo, "signal")
        .With("signal", signal == SIGTERM ? "SIGTERM" : "SIGINT");
    station.Stop();
    // A second signal means "now": stop without waiting for the hub (the
    // spool keeps whatever it did not acknowledge).
    signals.async_wait([&](const boost::system::error_code& ec2, int) {
      if (!ec2) io.stop();
    });
  });
  absl::Status status = station.Run();
  if (!status.ok()) {
    std::cerr << "stephub-station: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
