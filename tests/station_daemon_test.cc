// The station core against an in-process hub on loopback: it spools while
// the hub is away and delivers everything once it is back, starts a new boot
// when the hub holds more of its boot than its spool does, and stops
// gracefully with everything acknowledged.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <thread>

#include "common/pki.h"
#include "common/simulator.h"
#include "hub/api/hub_server.h"
#include "station/sensors/sensors.h"
#include "station/spool/spool.h"
#include "station/station.h"
#include "stephub/v1/clinic.grpc.pb.h"
#include "stephub/v1/station_link.grpc.pb.h"
#include "tests/test_hub.h"
#include "tests/testing.h"

namespace stephub {
namespace {

class StationDaemonTest : public ::testing::Test {
 protected:
  void StartHub(int port) {
    api::HubOptions options;
    options.listen_address = "127.0.0.1:" + std::to_string(port);
    options.data_dir = dir_.path() + "/hub";
    testing::UseTestTls(&options);
    auto hub = testing::StartHub(options);
    ASSERT_TRUE(hub.ok()) << hub.status();
    hub_ = std::move(*hub);
    port_ = hub_->port();
  }

  // With `identity` instead of the station's test certificate, if given.
  void StartStation(const std::string& station_id,
                    const pki::KeyAndCert* identity = nullptr) {
    station::StationOptions options;
    options.hub_address = "127.0.0.1:" + std::to_string(port_);
    options.station_id = station_id;
    testing::UseTestTls(&options, station_id);
    if (identity != nullptr) options.tls_identity = *identity;
    options.spool.dir = spool_dir_;
    options.max_backoff = absl::Milliseconds(300);
    auto profile = ProfileByName("level");
    ASSERT_TRUE(profile.ok());
    io_.restart();
    station_ = std::make_unique<station::Station>(
        io_, options,
        station::MakeSimulatedSource(*profile, 3, station::MonotonicMicros()));
    thread_ = std::thread([this] { result_ = station_->Run(); });
  }

  void StopStation() {
    station_->Stop();
    thread_.join();
  }

  uint64_t HubDurableSeq(const std::string& station_id) {
    const v1::ListStationsResponse list = testing::ListStations(port_);
    for (const auto& s : list.stations()) {
      if (s.station_id() == station_id) return s.durable_seq();
    }
    return 0;
  }

  void TearDown() override {
    if (thread_.joinable()) StopStation();
  }

  testing::TempDir dir_;
  std::string spool_dir_ = dir_.path() + "/spool";
  std::unique_ptr<api::HubServer> hub_;
  int port_ = 0;
  boost::asio::io_context io_;
  std::unique_ptr<station::Station> station_;
  std::thread thread_;
  absl::Status result_;
};

TEST_F(StationDaemonTest, SpoolsWhileTheHubIsAwayAndDeliversItAllAfter) {
  // Learn a free port, then take the hub away.
  ASSERT_NO_FATAL_FAILURE(StartHub(0));
  const int port = port_;
  hub_.reset();
  ASSERT_NO_FATAL_FAILURE(StartStation("bay-1"));
  // 40 batches of 25 ms: a second of samples with nobody to take them.
  ASSERT_TRUE(testing::WaitFor([&] { return station_->last_seq() >= 40; }));
  EXPECT_EQ(station_->acked_seq(), 0u);

  ASSERT_NO_FATAL_FAILURE(StartHub(port));
  ASSERT_TRUE(testing::WaitFor([&] { return station_->acked_seq() >= 60; }))
      << "acked " << station_->acked_seq();
  StopStation();
  EXPECT_TRUE(result_.ok()) << result_;
  // The graceful stop waited for the last acknowledgement.
  EXPECT_EQ(station_->acked_seq(), station_->last_seq());
  EXPECT_EQ(HubDurableSeq("bay-1"), station_->last_seq());
}

TEST_F(StationDaemonTest, HubHoldingMoreOfTheBootThanTheSpoolStartsANewBoot) {
  ASSERT_NO_FATAL_FAILURE(StartHub(0));
  // A spool with three batches, as if a power cut had taken the rest of
  // what the hub had already stored.
  std::string old_boot;
  {
    auto spool =
        station::Spool::Open(station::Env::Default(), {.dir = spool_dir_});
    ASSERT_TRUE(spool.ok()) << spool.status();
    old_boot = (*spool)->boot_id();
    for (uint64_t seq = 1; seq <= 3; ++seq) {
      std::string payload;
      testing::StandingBatch(seq, static_cast<int64_t>(seq) * 100'000, 5)
          .SerializeToString(&payload);
      ASSERT_TRUE((*spool)->Append(payload, 5).ok());
    }
    ASSERT_TRUE((*spool)->Sync().ok());
  }
  {
    auto link =
        v1::StationLink::NewStub(testing::StationChannel(port_, "bay-2"));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(20));
    auto stream = link->Stream(&ctx);
    v1::StationMessage m;
    *m.mutable_hello() = testing::SacrumHello("bay-2", old_boot);
    ASSERT_TRUE(stream->Write(m));
    for (uint64_t seq = 1; seq <= 5; ++seq) {
      *m.mutable_batch() =
          testing::StandingBatch(seq, static_cast<int64_t>(seq) * 100'000, 5);
      ASSERT_TRUE(stream->Write(m));
    }
    stream->WritesDone();
    v1::HubMessage in;
    while (stream->Read(&in)) {
    }
    ASSERT_TRUE(stream->Finish().ok());
  }
  ASSERT_EQ(HubDurableSeq("bay-2"), 5u);

  ASSERT_NO_FATAL_FAILURE(StartStation("bay-2"));
  // Numbers 4 and 5 of the old boot are taken at the hub: new batches must
  // not reuse them, so the station starts a new boot.
  ASSERT_TRUE(testing::WaitFor([&] {
    return station_->boot_id() != old_boot && station_->acked_seq() >= 20;
  })) << "boot "
      << station_->boot_id() << " acked " << station_->acked_seq();
  StopStation();
  EXPECT_TRUE(result_.ok()) << result_;
}

TEST_F(StationDaemonTest, StopSpoolsSyncsAndClosesTheStreamCleanly) {
  ASSERT_NO_FATAL_FAILURE(StartHub(0));
  ASSERT_NO_FATAL_FAILURE(StartStation("bay-3"));
  ASSERT_TRUE(testing::WaitFor([&] { return station_->acked_seq() >= 10; }));
  StopStation();
  EXPECT_TRUE(result_.ok()) << result_;
  EXPECT_EQ(station_->acked_seq(), station_->last_seq());
  const uint64_t last_seq = station_->last_seq();
  const std::string boot_id = station_->boot_id();
  station_.reset();  // releases the spool's lock
  // The spool, reopened, knows where the station was.
  auto spool =
      station::Spool::Open(station::Env::Default(), {.dir = spool_dir_});
  ASSERT_TRUE(spool.ok()) << spool.status();
  EXPECT_EQ((*spool)->last_seq(), last_seq);
  EXPECT_EQ((*spool)->boot_id(), boot_id);
  EXPECT_EQ((*spool)->recovery().torn_tail_bytes, 0u);
}

// Quiet standing on a sacral IMU, plus one reading from the force plate
// that no real plate can produce.
class PoisonedSource : public station::SensorSource {
 public:
  std::vector<v1::SensorInfo> Sensors() const override {
    v1::SensorInfo imu;
    imu.set_sensor_id(10);
    imu.set_kind(v1::SENSOR_KIND_IMU);
    imu.set_placement(v1::PLACEMENT_SACRUM);
    imu.set_rate_hz(200);
    v1::SensorInfo plate;
    plate.set_sensor_id(1);
    plate.set_kind(v1::SENSOR_KIND_FORCE_PLATE);
    plate.set_placement(v1::PLACEMENT_STANCE_FOOT);
    plate.set_rate_hz(200);
    return {imu, plate};
  }
  absl::Status Poll(int64_t now_us, v1::SampleBatch* batch) override {
    if (next_us_ == 0) next_us_ = now_us;
    int n = 0;
    while (next_us_ + n * 5000 <= now_us) ++n;
    if (n == 0) return absl::OkStatus();
    *batch = testing::StandingBatch(0, next_us_, n);
    if (++polls_ == 5) {
      v1::ForceSamples* f = batch->add_force();
      f->set_sensor_id(1);
      f->add_t_us(next_us_);
      f->add_fz_n(1e9f);
      f->add_cop_x_mm(0);
      f->add_cop_y_mm(0);
    }
    next_us_ += n * 5000;
    return absl::OkStatus();
  }
  std::vector<v1::SensorHealth> Health(int64_t) const override { return {}; }

 private:
  int64_t next_us_ = 0;
  int polls_ = 0;
};

TEST_F(StationDaemonTest, BatchTheHubKeepsRefusingIsSkippedAndTheRestFlows) {
  ASSERT_NO_FATAL_FAILURE(StartHub(0));
  station::StationOptions options;
  options.hub_address = "127.0.0.1:" + std::to_string(port_);
  options.station_id = "bay-4";
  testing::UseTestTls(&options, "bay-4");
  options.spool.dir = spool_dir_;
  options.max_backoff = absl::Milliseconds(200);
  station_ = std::make_unique<station::Station>(
      io_, options, std::make_unique<PoisonedSource>());
  thread_ = std::thread([this] { result_ = station_->Run(); });
  // Batch 5 is refused three times, then skipped; the hub then holds what
  // came after it.
  ASSERT_TRUE(testing::WaitFor([&] { return HubDurableSeq("bay-4") >= 40; }))
      << "hub durable " << HubDurableSeq("bay-4");
  StopStation();
  EXPECT_TRUE(result_.ok()) << result_;
}

// A lost bay's Pi is revoked while it streams: its stream is cut and every
// reconnect refused, it keeps spooling, and the replacement certificate
// (issued after the revocation) delivers all of it; nothing is lost.
TEST_F(StationDaemonTest, RevokedStationSpoolsAndItsReplacementDeliversAll) {
  ASSERT_NO_FATAL_FAILURE(StartHub(0));
  ASSERT_NO_FATAL_FAILURE(StartStation("bay-7"));
  ASSERT_TRUE(testing::WaitFor([&] { return station_->acked_seq() >= 20; }));

  v1::RevokeStationResponse revoked;
  ASSERT_TRUE(testing::RevokeStation(port_, "bay-7", &revoked).ok());
  EXPECT_EQ(revoked.streams_cut(), 1u);
  // Refused from now on: the station samples and spools, the hub takes
  // nothing more.
  const uint64_t acked_at_revocation = station_->acked_seq();
  ASSERT_TRUE(testing::WaitFor(
      [&] { return station_->last_seq() >= acked_at_revocation + 40; }));
  EXPECT_LE(station_->acked_seq(), acked_at_revocation + 8);
  // Batches the hub received just before the cut wait for their commit (up
  // to the stream commit delay) and are committed after it, unacknowledged:
  // the hub may hold a few more than the station knows, never fewer, and
  // none sent after the cut. The replacement resends those few; the hub
  // keeps them once.
  const uint64_t hub_durable = HubDurableSeq("bay-7");
  EXPECT_GE(hub_durable, station_->acked_seq());
  EXPECT_LE(hub_durable, acked_at_revocation + 10);
  StopStation();

  const pki::KeyAndCert replacement =
      testing::ReplacementCertificate("bay-7", revoked.revoked_at().seconds());
  const uint64_t spooled = station_->last_seq();
  ASSERT_NO_FATAL_FAILURE(StartStation("bay-7", &replacement));
  ASSERT_TRUE(testing::WaitFor([&] {
    return station_->acked_seq() >= spooled;
  })) << "acked "
      << station_->acked_seq() << " of " << spooled;
  StopStation();
  EXPECT_TRUE(result_.ok()) << result_;
  EXPECT_EQ(HubDurableSeq("bay-7"), station_->last_seq());
}

}  // namespace
}  // namespace stephub
