// Station core; see station.h.
#include "station/station.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <deque>
#include <fstream>
#include <optional>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/tls.h"
#include "station/link/backoff.h"
#include "station/link/clock_offset.h"
#include "station/link/hub_stream.h"
#include "stephub/v1/station_link.grpc.pb.h"

namespace stephub::station {
namespace {

using Clock = std::chrono::steady_clock;

std::chrono::microseconds ToChrono(absl::Duration d) {
  return std::chrono::microseconds(absl::ToInt64Microseconds(d));
}

uint64_t SampleCount(const v1::SampleBatch& batch) {
  uint64_t n = 0;
  for (const auto& imu : batch.imu()) n += imu.t_us_size();
  for (const auto& force : batch.force()) n += force.t_us_size();
  return n;
}

bool SameHealth(const std::vector<v1::SensorHealth>& a,
                const std::vector<v1::SensorHealth>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].sensor_id() != b[i].sensor_id() || a[i].state() != b[i].state() ||
        a[i].detail() != b[i].detail()) {
      return false;
    }
  }
  return true;
}

// Recently spooled batches, kept parsed so that live sending costs no disk
// read; older ones come back from the spool.
constexpr size_t kSendCacheBatches = 512;
// Messages queued on the stream before the station waits for writes to
// finish: enough to keep the link busy, small enough that a stalled link
// does not pile up memory (the spool holds the rest).
constexpr size_t kMaxQueuedOnStream = 16;
constexpr absl::Duration kHealthCheckPeriod = absl::Seconds(1);
constexpr absl::Duration kHealthRefresh = absl::Seconds(10);
constexpr int kMaxRefusals = 3;

}  // namespace

struct Station::Impl {
  Impl(boost::asio::io_context& io_in, StationOptions options_in,
       std::unique_ptr<SensorSource> source_in)
      : io(io_in),
        options(std::move(options_in)),
        source(std::move(source_in)),
        batch_timer(io),
        reconnect_timer(io),
        ping_timer(io),
        health_timer(io),
        grace_timer(io),
        backoff(absl::Milliseconds(100), options.max_backoff,
                std::random_device{}()) {}

  boost::asio::io_context& io;
  StationOptions options;
  std::unique_ptr<SensorSource> source;
  std::unique_ptr<Spool> spool;

  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::StationLink::Stub> stub;
  StreamTracker tracker;
  std::shared_ptr<HubStream> stream;  // the stream of the moment, if any
  uint64_t generation = 0;            // tells old streams' events apart
  bool welcomed = false;  // the current stream is ready to carry batches

  boost::asio::steady_timer batch_timer;
  boost::asio::steady_timer reconnect_timer;
  boost::asio::steady_timer ping_timer;
  boost::asio::steady_timer health_timer;
  boost::asio::steady_timer grace_timer;
  Clock::time_point next_tick;
  int64_t virtual_now_us = 0;

  Backoff backoff;
  ClockOffsetEstimator clock;
  std::optional<ClockEstimate> reported_clock;
  absl::Time clock_reported_at = absl::InfinitePast();
  uint64_t next_ping_id = 1;

  std::deque<v1::SampleBatch> send_cache;
  uint64_t sent = 0;  // highest seq written on the current stream
  std::atomic<uint64_t> acked{0};
  std::atomic<uint64_t> last_seq_seen{0};
  std::atomic<uint64_t> dropped{0};
  std::string boot;  // copy of the spool's, for other threads
  mutable std::mutex boot_mu;

  std::vector<v1::SensorHealth> health_sent;
  absl::Time health_sent_at = absl::InfinitePast();
  uint64_t dropped_logged = 0;
  uint64_t write_failures = 0;
  uint64_t opened_last_seq = 0;  // the spool's last seq when Run opened it
  bool first_welcome = true;
  uint64_t refused_seq = 0;  // the batch the hub refused last
  int refusals = 0;          // how often in a row
  uint64_t skip_seq = 0;     // never to be sent again
  bool after_skip = false;

  bool set_begun = false;
  bool stopping = false;
  bool finished = false;
  absl::Status result;

  int64_t Now() const {
    return options.real_time ? MonotonicMicros() : virtual_now_us;
  }

  void SetBoot(const std::string& id) {
    std::lock_guard<std::mutex> lock(boot_mu);
    boot = id;
  }

  // ---- sampling -------------------------------------------------------

  void ScheduleTick() {
    if (stopping) return;
    if (options.real_time) {
      next_tick += ToChrono(options.batch_period);
      // After a stall (e.g. the SD card blocked) catch up in one batch
      // rather than in a burst of empty ticks.
      if (next_tick < Clock::now() - ToChrono(options.batch_period) * 4) {
        next_tick = Clock::now();
      }
      batch_timer.expires_at(next_tick);
    } else {
      // Virtual clock: as fast as the hub acknowledges.
      if (spool->last_seq() - std::min(Settled(), spool->last_seq()) >=
          static_cast<uint64_t>(options.max_in_flight)) {
        return;  // an ack resumes ticking
      }
      batch_timer.expires_after(std::chrono::microseconds(0));
    }
    batch_timer.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) Tick();
    });
  }

  void Tick() {
    if (stopping) return;
    if (options.real_time) {
      virtual_now_us = MonotonicMicros();
    } else {
      virtual_now_us += absl::ToInt64Microseconds(options.batch_period);
    }
    const bool draining = options.exit_after_set && source->SetPlayed();
    if (!draining) {
      if (!SampleOnce()) return;
    }
    if (auto s = spool->MaybeSync(absl::Now()); !s.ok()) {
      Log(LogLevel::kError, "spool_sync_failed").With("error", s);
    }
    Pump();
    if (draining && Settled() >= spool->last_seq()) {
      Log(LogLevel::kInfo, "set_stored").With("last_seq", spool->last_seq());
      BeginShutdown(/*graceful=*/true);
      return;
    }
    ScheduleTick();
  }

  // Polls the source and spools what it gave. False when the station must
  // stop (the source failed).
  bool SampleOnce() {
    v1::SampleBatch batch;
    if (auto s = source->Poll(virtual_now_us, &batch); !s.ok()) {
      Log(LogLevel::kError, "sensor_source_failed").With("error", s);
      result = s;
      BeginShutdown(/*graceful=*/true);
      return false;
    }
    if (batch.imu_size() == 0 && batch.force_size() == 0) return true;
    SpoolBatch(std::move(batch));
    return true;
  }

  void SpoolBatch(v1::SampleBatch batch) {
    batch.set_seq(spool->last_seq() + 1);
    const uint64_t samples = SampleCount(batch);
    std::string payload;
    batch.SerializeToString(&payload);
    auto seq = spool->Append(payload, samples);
    if (!seq.ok() && !absl::IsResourceExhausted(seq.status())) {
      // Not the cap: the SD card failed the write. The batch is lost.
      ++write_failures;
      Log(LogLevel::kError, "spool_write_failed")
          .With("failures", write_failures)
          .With("samples_lost", samples)
          .With("error", seq.status());
      return;
    }
    if (!seq.ok()) {
      dropped = spool->dropped_samples();
      // Logged on the first loss and then every 1000 batches, not per batch.
      if (spool->dropped_batches() - dropped_logged >= 1000 ||
          dropped_logged == 0) {
        dropped_logged = spool->dropped_batches();
        Log(LogLevel::kWarning, "spool_full_samples_dropped")
            .With("dropped_batches", spool->dropped_batches())
            .With("dropped_samples", spool->dropped_samples())
            .With("spool_bytes", spool->bytes())
            .With("error", seq.status());
      }
      return;
    }
    last_seq_seen = *seq;
    send_cache.push_back(std::move(batch));
    while (send_cache.size() > kSendCacheBatches) send_cache.pop_front();
  }

  // ---- sending --------------------------------------------------------

  // Writes spooled batches the hub has not seen on this stream, within the
  // in-flight window.
  void Pump() {
    if (!stream || !welcomed) return;
    std::vector<SpoolRecord> from_disk;
    while (sent < spool->last_seq() && InFlight() < options.max_in_flight &&
           stream->Queued() < kMaxQueuedOnStream) {
      v1::StationMessage message;
      const uint64_t want = sent + 1;
      if (want == skip_seq) {
        sent = want;
        after_skip = true;
        continue;
      }
      if (!send_cache.empty() && send_cache.front().seq() <= want &&
          send_cache.back().seq() >= want) {
        *message.mutable_batch() = send_cache[want - send_cache.front().seq()];
      } else {
        from_disk.clear();
        if (auto s = spool->ReadAfter(sent, 1, &from_disk);
            !s.ok() || from_disk.empty()) {
          Log(LogLevel::kError, "spool_read_failed")
              .With("after_seq", sent)
              .With("error", s.ok() ? absl::DataLossError("no record") : s);
          return;
        }
        if (!message.mutable_batch()->ParseFromString(from_disk[0].payload) ||
            message.batch().seq() != from_disk[0].seq ||
            from_disk[0].seq < want) {
          Log(LogLevel::kError, "spool_record_unreadable")
              .With("seq", from_disk[0].seq);
          return;
        }
        if (from_disk[0].seq > want) {
          // The spool skipped damaged records: those batches are lost. Say
          // so, rather than stall on a gap forever.
          Log(LogLevel::kError, "spool_batches_lost")
              .With("first_seq", want)
              .With("last_seq", from_disk[0].seq - 1);
          message.mutable_batch()->set_follows_spool_loss(true);
        }
      }
      if (after_skip) {
        message.mutable_batch()->set_follows_spool_loss(true);
        after_skip = false;
      }
      const uint64_t seq = message.batch().seq();
      stream->Send(std::move(message));
      sent = seq;
    }
  }

  // ---- connection -----------------------------------------------------

  v1::StationMessage Hello() const {
    v1::StationMessage message;
    v1::StationHello* hello = message.mutable_hello();
    hello->set_station_id(options.station_id);
    hello->set_boot_id(spool->boot_id());
    hello->set_software_version("stephub-station 0.2");
    hello->set_spool_dropped_samples(spool->dropped_samples());
    hello->set_spool_dropped_batches(spool->dropped_batches());
    for (auto& sensor : source->Sensors()) *hello->add_sensors() = sensor;
    hello->set_calibration_movement(options.calibration_movement.value_or(
        source->CalibrationMovement().value_or(true)));
    return message;
  }

  void Connect() {
    if (stopping) return;
    const uint64_t gen = ++generation;
    welcomed = false;
    stream = HubStream::Open(
        stub.get(), io, &tracker, Hello(),
        [this, gen](v1::HubMessage message, int64_t received_us) {
          if (gen == generation) OnHubMessage(std::move(message), received_us);
        },
        [this, gen](grpc::Status status) {
          if (gen == generation) OnStreamClosed(status);
        },
        [] { return MonotonicMicros(); });
  }

  void OnHubMessage(v1::HubMessage message, int64_t received_us) {
    switch (message.message_case()) {
      case v1::HubMessage::kWelcome:
        OnWelcome(message.welcome().durable_seq());
        break;
      case v1::HubMessage::kAck:
        OnAck(message.ack().durable_seq());
        break;
      case v1::HubMessage::kFeedback:
        OnFeedback(message.feedback());
        break;
      case v1::HubMessage::kClockPong:
        OnPong(message.clock_pong(), received_us);
        break;
      default:
        break;
    }
  }

  void OnWelcome(uint64_t durable) {
    // Numbers this spool holds from before the process started are the
    // ones the hub may also hold; batches spooled since are new either way.
    const uint64_t known = first_welcome ? opened_last_seq : spool->last_seq();
    if (durable > known) {
      // The hub holds more of this boot than the spool had: the spool lost
      // its unsynced tail (a power cut). Reusing those numbers would make
      // the hub drop new samples as duplicates, so start a new boot and
      // spool again, under it, what was sampled since the start.
      Log(LogLevel::kWarning, "spool_behind_hub_new_boot")
          .With("boot_id", spool->boot_id())
          .With("hub_durable_seq", durable)
          .With("spool_last_seq", known);
      std::vector<v1::SampleBatch> since_start;
      for (auto& batch : send_cache) {
        if (batch.seq() > known) since_start.push_back(std::move(batch));
      }
      const uint64_t lost =
          spool->last_seq() - known - static_cast<uint64_t>(since_start.size());
      if (auto s = spool->Reset(); !s.ok()) {
        Log(LogLevel::kError, "spool_reset_failed").With("error", s);
        result = s;
        BeginShutdown(false);
        return;
      }
      SetBoot(spool->boot_id());
      send_cache.clear();
      acked = 0;
      last_seq_seen = 0;
      opened_last_seq = 0;
      ForgetRefusals();
      for (auto& batch : since_start) SpoolBatch(std::move(batch));
      if (lost > 0) {
        Log(LogLevel::kError, "batches_lost_in_new_boot").With("batches", lost);
      }
      stream->Cancel();  // the next stream says hello with the new boot id
      return;
    }
    first_welcome = false;
    if (durable < acked) {
      // The hub's record lost batches it had acknowledged (restored from a
      // backup?). They are released here and cannot be sent again; resume
      // from what the hub holds, and what the spool still has goes next.
      Log(LogLevel::kError, "hub_durable_seq_went_back")
          .With("hub_durable_seq", durable)
          .With("acked_seq", acked.load());
      acked = durable;
    }
    welcomed = true;
    backoff.Reset();
    sent = durable;
    Log(LogLevel::kInfo, "connected")
        .With("hub", options.hub_address)
        .With("boot_id", spool->boot_id())
        .With("hub_durable_seq", durable)
        .With("spool_last_seq", spool->last_seq());
    OnAck(durable);
    Pump();
    health_sent.clear();  // the hub starts each stream knowing nothing
    CheckHealth();
    SendPing();
  }

  // Acknowledged, counting a batch skipped after refusals as done.
  uint64_t Settled() const {
    return skip_seq != 0 && skip_seq == acked + 1 ? skip_seq : acked.load();
  }

  // Batches sent and not yet settled (sent may still be below a skipped
  // batch that counts as settled).
  int64_t InFlight() const {
    const uint64_t settled = Settled();
    return sent > settled ? static_cast<int64_t>(sent - settled) : 0;
  }

  void ForgetRefusals() {
    refused_seq = 0;
    refusals = 0;
    skip_seq = 0;
    after_skip = false;
  }

  void OnAck(uint64_t durable) {
    if (durable <= acked && durable != 0) return;
    acked = std::max<uint64_t>(acked, durable);
    if (auto s = spool->Release(acked); !s.ok()) {
      Log(LogLevel::kError, "spool_release_failed").With("error", s);
    }
    while (!send_cache.empty() && send_cache.front().seq() <= acked) {
      send_cache.pop_front();
    }
    Pump();
    if (stopping) {
      if (Settled() >= spool->last_seq()) FinishStream(/*graceful=*/true);
      return;
    }
    if (!options.real_time) ScheduleTick();  // the window opened
    if (options.exit_after_set && source->SetPlayed() &&
        Settled() >= spool->last_seq()) {
      BeginShutdown(/*graceful=*/true);
    }
  }

  void OnFeedback(const v1::StationFeedback& feedback) {
    if (feedback.set_active() && !set_begun) {
      set_begun = true;
      const int64_t start = Now();
      SaveCurrentSet(feedback.set_id(), start, feedback.stance_side());
      source->OnSetStarted(start, ToStanceSide(feedback.stance_side()));
    }
    if (!feedback.set_active() && !options.current_set_file.empty()) {
      std::remove(options.current_set_file.c_str());
    }
    if (options.on_feedback) options.on_feedback(feedback);
  }

  static StanceSide ToStanceSide(v1::StanceSide side) {
    return side == v1::STANCE_SIDE_RIGHT ? StanceSide::kRight
                                         : StanceSide::kLeft;
  }

  // Notes the running set's start on the station clock. The monotonic
  // clock runs on across a restart of the process, so a station restarted
  // mid-set can resume a simulated or replayed patient where it would be.
  void SaveCurrentSet(int64_t set_id, int64_t start_us, v1::StanceSide side) {
    if (options.current_set_file.empty() || !options.real_time) return;
    const std::string tmp = options.current_set_file + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << set_id << " " << start_us << " " << static_cast<int>(side) << "\n";
      if (!out) {
        Log(LogLevel::kWarning, "current_set_not_saved").With("file", tmp);
        return;
      }
    }
    std::rename(tmp.c_str(), options.current_set_file.c_str());
  }

  // The newest sample time in the spool; 0 when it is empty.
  int64_t LastSpooledSampleUs() {
    std::vector<SpoolRecord> last;
    v1::SampleBatch batch;
    if (spool->last_seq() == 0 ||
        !spool->ReadAfter(spool->last_seq() - 1, 1, &last).ok() ||
        last.empty() || !batch.ParseFromString(last[0].payload)) {
      return 0;
    }
    int64_t newest = 0;
    for (const auto& imu : batch.imu()) {
      for (int64_t t : imu.t_us()) newest = std::max(newest, t);
    }
    for (const auto& force : batch.force()) {
      for (int64_t t : force.t_us()) newest = std::max(newest, t);
    }
    return newest;
  }

  // At start: a set that was running when the station stopped goes on.
  void ResumeCurrentSet() {
    if (options.current_set_file.empty() || !options.real_time) return;
    std::ifstream in(options.current_set_file);
    int64_t set_id = 0, start_us = 0;
    int side = 0;
    if (!(in >> set_id >> start_us >> side) || start_us > MonotonicMicros()) {
      return;  // none, or from before the machine rebooted
    }
    set_begun = true;
    Log(LogLevel::kInfo, "set_resumed")
        .With("set_id", set_id)
        .With("started_s_ago", (MonotonicMicros() - start_us) / 1e6);
    source->OnSetStarted(start_us,
                         ToStanceSide(static_cast<v1::StanceSide>(side)));
  }

  void OnStreamClosed(const grpc::Status& status) {
    stream.reset();
    welcomed = false;
    clock.Clear();
    NoteRefusal(status);
    if (finished) return;
    if (stopping) {
      Finish();
      return;
    }
    const absl::Duration delay = backoff.Next();
    // Refused for who it is (revoked, or the wrong certificate): an error,
    // since only a new certificate helps; it keeps retrying (and spooling)
    // all the same, so that it resumes once the hub accepts it.
    const bool refused_identity =
        status.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
        status.error_code() == grpc::StatusCode::UNAUTHENTICATED;
    Log(status.ok()        ? LogLevel::kInfo
        : refused_identity ? LogLevel::kError
                           : LogLevel::kWarning,
        "disconnected")
        .With("hub", options.hub_address)
        .With("code", static_cast<int>(status.error_code()))
        .With("message", status.error_message())
        .With("retry_in_ms", absl::ToInt64Milliseconds(delay));
    reconnect_timer.expires_after(ToChrono(delay));
    reconnect_timer.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) Connect();
    });
  }

  // A batch the hub refuses (a driver produced values out of any
  // physical range, say) would otherwise be resent forever and block every
  // batch behind it. After kMaxRefusals refusals of the same batch it is
  // skipped, loudly, and the hub is told of the gap.
  void NoteRefusal(const grpc::Status& status) {
    uint64_t seq = 0;
    if (status.error_code() != grpc::StatusCode::INVALID_ARGUMENT ||
        std::sscanf(status.error_message().c_str(), "batch %" SCNu64 " refused",
                    &seq) != 1) {
      return;
    }
    refusals = seq == refused_seq ? refusals + 1 : 1;
    refused_seq = seq;
    if (refusals < kMaxRefusals) return;
    Log(LogLevel::kError, "batch_refused_skipped")
        .With("seq", seq)
        .With("refusals", refusals)
        .With("hub_says", status.error_message());
    skip_seq = seq;
    refusals = 0;
  }

  // ---- clock and health -----------------------------------------------

  void SendPing() {
    if (!stream || !welcomed) return;
    v1::StationMessage message;
    message.mutable_clock_ping()->set_ping_id(next_ping_id++);
    message.mutable_clock_ping()->set_station_send_us(MonotonicMicros());
    stream->Send(std::move(message));
  }

  void SchedulePing() {
    ping_timer.expires_after(ToChrono(options.clock_ping_interval));
    ping_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping) return;
      SendPing();
      SchedulePing();
    });
  }

  void OnPong(const v1::ClockPong& pong, int64_t received_us) {
    if (!clock.Add({pong.station_send_us(), pong.hub_receive_us(),
                    pong.hub_send_us(), received_us})) {
      Log(LogLevel::kDebug, "clock_exchange_rejected")
          .With("ping_id", pong.ping_id());
      return;
    }
    const auto best = clock.Best();
    const bool moved = !reported_clock ||
                       std::abs(best->offset_us - reported_clock->offset_us) >
                           std::max<int64_t>(500, best->uncertainty_us);
    if (!moved && absl::Now() - clock_reported_at < absl::Seconds(30)) return;
    Log(moved ? LogLevel::kInfo : LogLevel::kDebug, "clock_offset")
        .With("offset_us", best->offset_us)
        .With("uncertainty_us", best->uncertainty_us)
        .With("round_trip_us", best->round_trip_us);
    reported_clock = best;
    clock_reported_at = absl::Now();
    v1::StationMessage message;
    v1::ClockOffset* c = message.mutable_clock_offset();
    c->set_offset_us(best->offset_us);
    c->set_uncertainty_us(best->uncertainty_us);
    c->set_round_trip_us(best->round_trip_us);
    if (stream && welcomed) stream->Send(std::move(message));
  }

  void CheckHealth() {
    std::vector<v1::SensorHealth> now = source->Health(MonotonicMicros());
    const bool changed = !SameHealth(now, health_sent);
    if (changed) {
      for (const auto& h : now) {
        Log(h.state() == v1::SENSOR_STATE_OK ? LogLevel::kInfo
                                             : LogLevel::kWarning,
            "sensor_health")
            .With("sensor_id", h.sensor_id())
            .With("state", v1::SensorState_Name(h.state()))
            .With("detail", h.detail())
            .With("samples_lost", h.samples_lost());
      }
    }
    if (!stream || !welcomed) return;
    if (!changed && absl::Now() - health_sent_at < kHealthRefresh) return;
    v1::StationMessage message;
    v1::StationHealth* health = message.mutable_health();
    for (const auto& h : now) *health->add_sensors() = h;
    health->set_spool_bytes(spool->bytes());
    health->set_spool_dropped_samples(spool->dropped_samples());
    stream->Send(std::move(message));
    health_sent = std::move(now);
    health_sent_at = absl::Now();
  }

  void ScheduleHealth() {
    health_timer.expires_after(ToChrono(kHealthCheckPeriod));
    health_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping) return;
      CheckHealth();
      ScheduleHealth();
    });
  }

  // ---- shutdown -------------------------------------------------------

  void BeginShutdown(bool graceful) {
    if (stopping) return;
    stopping = true;
    batch_timer.cancel();
    reconnect_timer.cancel();
    ping_timer.cancel();
    health_timer.cancel();
    source->Stop();
    // Samples the drivers decoded before they stopped still go to the spool.
    if (!(options.exit_after_set && source->SetPlayed())) {
      v1::SampleBatch batch;
      if (source->Poll(Now(), &batch).ok() &&
          (batch.imu_size() > 0 || batch.force_size() > 0)) {
        SpoolBatch(std::move(batch));
      }
    }
    if (auto s = spool->Sync(); !s.ok()) {
      Log(LogLevel::kError, "spool_sync_failed").With("error", s);
      if (result.ok()) result = s;
    }
    if (!stream) {
      Finish();
      return;
    }
    if (!graceful || !welcomed) {
      FinishStream(false);
      return;
    }
    Pump();
    if (Settled() >= spool->last_seq()) {
      FinishStream(true);
      return;
    }
    grace_timer.expires_after(ToChrono(options.shutdown_grace));
    grace_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      Log(LogLevel::kInfo, "shutdown_grace_over")
          .With("unacknowledged_batches", spool->last_seq() - acked);
      FinishStream(false);
    });
  }

  void FinishStream(bool graceful) {
    grace_timer.cancel();
    if (!stream) {
      Finish();
      return;
    }
    if (graceful) {
      stream->Close();  // the hub ends the stream once all is stored
      // On a link that died silently the hub never answers; do not wait
      // for keepalive to notice.
      grace_timer.expires_after(ToChrono(options.shutdown_grace));
      grace_timer.async_wait([this](const boost::system::error_code& ec) {
        if (!ec && stream) stream->Cancel();
      });
    } else {
      stream->Cancel();
    }
  }

  void Finish() {
    if (finished) return;
    finished = true;
    grace_timer.cancel();
    Log(LogLevel::kInfo, "stopped")
        .With("last_seq", spool->last_seq())
        .With("acked_seq", acked.load())
        .With("spool_bytes", spool->bytes());
    io.stop();
  }
};

Station::Station(boost::asio::io_context& io, StationOptions options,
                 std::unique_ptr<SensorSource> source)
    : impl_(std::make_unique<Impl>(io, std::move(options), std::move(source))) {
  const StationOptions& o = impl_->options;
  grpc::ChannelArguments args;
  // gRPC's own reconnect backoff grows to two minutes; a bay must be back
  // within moments of the Wi-Fi returning.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(o.max_backoff)));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  // Keepalive finds a dead Wi-Fi link in keepalive_time + timeout instead of
  // at the next TCP timeout; the hub accepts pings every 5 s or more.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
              static_cast<int>(absl::ToInt64Milliseconds(o.keepalive_time)));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
              static_cast<int>(absl::ToInt64Milliseconds(o.keepalive_timeout)));
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  impl_->channel = grpc::CreateCustomChannel(
      o.hub_address,
      tls::ChannelCredentials(
          {o.tls_ca_cert_pem, o.tls_identity.cert_pem, o.tls_identity.key_pem},
          o.insecure_dev),
      args);
  impl_->stub = v1::StationLink::NewStub(impl_->channel);
}

Station::~Station() {
  Impl& s = *impl_;
  if (s.stream) s.stream->Cancel();
  // gRPC may still be finishing a stream's callbacks; they reference this.
  s.tracker.WaitAllClosed();
}

absl::Status Station::Run() {
  Impl& s = *impl_;
  Env* env = s.options.env != nullptr ? s.options.env : Env::Default();
  auto spool = Spool::Open(env, s.options.spool);
  if (!spool.ok()) return spool.status();
  s.spool = *std::move(spool);
  s.SetBoot(s.spool->boot_id());
  s.last_seq_seen = s.spool->last_seq();
  s.opened_last_seq = s.spool->last_seq();
  s.dropped = s.spool->dropped_samples();
  const SpoolRecovery& recovery = s.spool->recovery();
  Log(recovery.torn_tail_bytes > 0 || recovery.corrupt_bytes > 0
          ? LogLevel::kWarning
          : LogLevel::kInfo,
      "spool_opened")
      .With("dir", s.options.spool.dir)
      .With("boot_id", s.spool->boot_id())
      .With("created", recovery.created)
      .With("records", recovery.records)
      .With("last_seq", s.spool->last_seq())
      .With("torn_tail_bytes", recovery.torn_tail_bytes)
      .With("corrupt_bytes", recovery.corrupt_bytes);
  for (const auto& problem : recovery.problems) {
    Log(LogLevel::kWarning, "spool_recovery").With("problem", problem);
  }
  if (auto st = s.source->Start(); !st.ok()) return st;
  for (const auto& sensor : s.source->Sensors()) {
    Log(LogLevel::kInfo, "sensor")
        .With("sensor_id", sensor.sensor_id())
        .With("kind", v1::SensorKind_Name(sensor.kind()))
        .With("placement", v1::Placement_Name(sensor.placement()))
        .With("rate_hz", sensor.rate_hz())
        .With("driver", sensor.driver())
        .With("device", sensor.device());
  }

  s.virtual_now_us = MonotonicMicros();
  if (!s.options.real_time) {
    // The virtual clock ran ahead of the real one before a restart: new
    // samples must still come after the spooled ones.
    s.virtual_now_us = std::max(s.virtual_now_us, s.LastSpooledSampleUs());
  }
  s.next_tick = Clock::now();
  s.ResumeCurrentSet();
  s.io.restart();
  // gRPC's callbacks post onto the io_context from other threads; without
  // this guard run() would return whenever no timer happens to be pending
  // (e.g. while a graceful close waits for the hub).
  auto guard = boost::asio::make_work_guard(s.io);
  boost::asio::post(s.io, [&s] {
    s.Connect();
    s.ScheduleTick();
    s.SchedulePing();
    s.ScheduleHealth();
  });
  s.io.run();
  if (!s.finished) {
    // io.stop() from outside: still leave the spool synced.
    if (auto st = s.spool->Sync(); !st.ok() && s.result.ok()) s.result = st;
  }
  return s.result;
}

void Station::Stop() {
  boost::asio::post(impl_->io,
                    [s = impl_.get()] { s->BeginShutdown(/*graceful=*/true); });
}

uint64_t Station::acked_seq() const { return impl_->acked; }
uint64_t Station::last_seq() const { return impl_->last_seq_seen; }
std::string Station::boot_id() const {
  std::lock_guard<std::mutex> lock(impl_->boot_mu);
  return impl_->boot;
}
uint64_t Station::dropped_samples() const { return impl_->dropped; }

}  // namespace stephub::station
