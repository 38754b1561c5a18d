// stephub-loadgen's engine; see load_fleet.h.
#include "bench/load/load_fleet.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/simulator.h"
#include "common/staff_channel.h"
#include "station/link/hub_stream.h"
#include "station/sensors/sensors.h"
#include "stephub/v1/clinic.grpc.pb.h"
#include "stephub/v1/dashboard.grpc.pb.h"

namespace stephub::bench {
namespace {

using google::protobuf::util::TimeUtil;

using Clock = std::chrono::steady_clock;

constexpr absl::Duration kStandingLead = absl::Seconds(2);
constexpr absl::Duration kStandingTail = absl::Seconds(3);
// How long into the tail the therapist ends the set.
constexpr absl::Duration kEndSetAfter = absl::Seconds(1);

// Lock-free latency histogram: 1 ms buckets up to 60 s.
class Histogram {
 public:
  void Add(absl::Duration d) {
    const int64_t ms =
        std::clamp<int64_t>(absl::ToInt64Milliseconds(d), 0, kBuckets - 1);
    buckets_[static_cast<size_t>(ms)].fetch_add(1, std::memory_order_relaxed);
    int64_t us = absl::ToInt64Microseconds(d);
    int64_t seen = max_us_.load(std::memory_order_relaxed);
    while (us > seen && !max_us_.compare_exchange_weak(seen, us)) {
    }
  }
  Percentiles Summary() const {
    Percentiles p;
    for (const auto& b : buckets_) p.count += b.load();
    if (p.count == 0) return p;
    auto at = [&](double share) {
      const auto want =
          static_cast<int64_t>(share * static_cast<double>(p.count));
      int64_t seen = 0;
      for (size_t i = 0; i < buckets_.size(); ++i) {
        seen += buckets_[i].load();
        if (seen > want) return static_cast<double>(i) + 0.5;
      }
      return static_cast<double>(kBuckets);
    };
    p.p50_ms = at(0.50);
    p.p99_ms = at(0.99);
    p.max_ms = static_cast<double>(max_us_.load()) / 1000.0;
    return p;
  }

 private:
  static constexpr int64_t kBuckets = 60'000;
  std::array<std::atomic<int64_t>, kBuckets> buckets_{};
  std::atomic<int64_t> max_us_{0};
};

struct Counters {
  std::atomic<int64_t> batches_sent{0}, batches_acked{0}, samples_sent{0};
  std::atomic<int64_t> batches_late{0}, streams_ended{0};
  std::atomic<int64_t> sets_started{0}, sets_ended{0}, set_errors{0};
  std::atomic<int64_t> repetitions{0};
  Histogram ack_lag, repetition_latency, repetition_published, send_lag;
  Histogram set_call;  // StartSet/EndSet sent -> answered, errors too
  std::mutex error_mu;
  std::string first_error;
  void Error(const std::string& what) {
    std::lock_guard<std::mutex> lock(error_mu);
    if (first_error.empty()) first_error = what;
  }
};

int64_t SampleCount(const v1::SampleBatch& batch) {
  int64_t n = 0;
  for (const auto& imu : batch.imu()) n += imu.t_us_size();
  for (const auto& force : batch.force()) n += force.t_us_size();
  return n;
}

// One simulated bay.
class LoadStation {
 public:
  LoadStation(std::string id, int64_t patient_id, const PregeneratedSet& set,
              size_t phase, Counters& counters, absl::Duration late_after)
      : id_(std::move(id)),
        patient_id_(patient_id),
        set_(set),
        phase_(phase),
        counters_(counters),
        late_after_(late_after) {}

  const std::string& id() const { return id_; }
  bool in_set = false;  // the ticker's: a set was started and not ended
  int64_t patient_id() const { return patient_id_; }
  // Hub time minus station clock (both on this machine).
  int64_t offset_us() const { return offset_us_; }

  void Open(const std::string& address,
            const std::shared_ptr<grpc::ChannelCredentials>& credentials,
            boost::asio::io_context& io, station::StreamTracker& tracker,
            int64_t start_us) {
    grpc::ChannelArguments args;
    // Its own connection, as a real station has.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    channel_ = grpc::CreateCustomChannel(address, credentials, args);
    stub_ = v1::StationLink::NewStub(channel_);
    offset_us_ = absl::ToUnixMicros(absl::Now()) - station::MonotonicMicros();
    v1::StationMessage hello;
    v1::StationHello* h = hello.mutable_hello();
    h->set_station_id(id_);
    h->set_boot_id(absl::StrCat("loadgen-", start_us));
    h->set_software_version("stephub-loadgen");
    h->set_calibration_movement(true);
    for (const auto& sensor : set_.sensors) *h->add_sensors() = sensor;
    stream_ = station::HubStream::Open(
        stub_.get(), io, &tracker, std::move(hello),
        [this](v1::HubMessage message, int64_t) { OnMessage(message); },
        [this](grpc::Status status) {
          if (!stopping_) {
            counters_.streams_ended.fetch_add(1);
            counters_.Error(
                absl::StrCat(id_, ": stream ended: ", status.error_message()));
          }
        },
        [] { return station::MonotonicMicros(); });
    v1::StationMessage offset;
    offset.mutable_clock_offset()->set_offset_us(offset_us_);
    offset.mutable_clock_offset()->set_uncertainty_us(100);
    stream_->Send(std::move(offset));
  }

  // Batch k holds the samples of [epoch + k*P, epoch + (k+1)*P) on the
  // station clock. The epoch is when the ticker starts, not when the
  // streams were opened: opening hundreds takes a while, and data older
  // than its sending would count against the hub's latency.
  void SetEpoch(int64_t epoch_us) { start_us_ = epoch_us; }

  // Sends batch k (the samples of [start + k*P, start + (k+1)*P)); returns
  // the replay's batch index, for the set schedule.
  size_t SendBatch(uint64_t k) {
    const size_t m = set_.batches.size();
    const size_t j = (phase_ + k) % m;
    const int64_t period_us = absl::ToInt64Microseconds(set_.batch_period);
    const int64_t shift =
        start_us_ +
        (static_cast<int64_t>(k) - static_cast<int64_t>(j)) * period_us;
    v1::StationMessage message;
    v1::SampleBatch* batch = message.mutable_batch();
    *batch = set_.batches[j];
    for (auto& imu : *batch->mutable_imu()) {
      for (auto& t : *imu.mutable_t_us()) t += shift;
    }
    for (auto& force : *batch->mutable_force()) {
      for (auto& t : *force.mutable_t_us()) t += shift;
    }
    const uint64_t seq = k + 1;
    batch->set_seq(seq);
    counters_.samples_sent.fetch_add(SampleCount(*batch));
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_flight_.emplace_back(seq, Clock::now());
    }
    counters_.batches_sent.fetch_add(1);
    stream_->Send(std::move(message));
    return j;
  }

  int64_t Unacked() {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int64_t>(in_flight_.size());
  }

  void Close() {
    stopping_ = true;
    if (stream_) stream_->Cancel();
  }

 private:
  void OnMessage(const v1::HubMessage& message) {
    if (!message.has_ack()) return;
    const auto now = Clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    while (!in_flight_.empty() &&
           in_flight_.front().first <= message.ack().durable_seq()) {
      const absl::Duration lag =
          absl::FromChrono(now - in_flight_.front().second);
      counters_.ack_lag.Add(lag);
      if (lag > late_after_) counters_.batches_late.fetch_add(1);
      counters_.batches_acked.fetch_add(1);
      in_flight_.pop_front();
    }
  }

  const std::string id_;
  const int64_t patient_id_;
  const PregeneratedSet& set_;
  const size_t phase_;
  Counters& counters_;
  const absl::Duration late_after_;
  int64_t start_us_ = 0;
  int64_t offset_us_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::StationLink::Stub> stub_;
  std::shared_ptr<station::HubStream> stream_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::deque<std::pair<uint64_t, Clock::time_point>> in_flight_;
};

// Clinic.StartSet / EndSet, without holding up the ticker.
class SetSchedule {
 public:
  SetSchedule(const FleetOptions& options, Counters& counters)
      : counters_(counters) {
    for (const std::string& token : options.staff_tokens) {
      clinics_.push_back(v1::Clinic::NewStub(
          CreateStaffChannel(options.hub_address, options.credentials, token)));
    }
  }
  ~SetSchedule() { Stop(); }
  bool enabled() const { return !clinics_.empty(); }

  // Drops the calls not yet sent and waits for those under way (each has
  // a deadline): their callbacks use this object and the counters.
  void Stop() {
    std::unique_lock<std::mutex> lock(lanes_mu_);
    stopping_ = true;
    for (auto& [id, lane] : lanes_) lane.waiting.clear();
    idle_.wait(lock, [this] { return calls_under_way_ == 0; });
  }

  // A station's calls go one at a time: an EndSet and the next StartSet
  // sent together could reach the hub in either order.
  void Start(const LoadStation& station) {
    auto call = std::make_shared<Call<v1::StartSetRequest>>();
    call->request.set_station_id(station.id());
    call->request.set_patient_id(station.patient_id());
    call->request.set_stance_side(v1::STANCE_SIDE_LEFT);
    InTurn(station.id(), [this, call, id = station.id()] {
      call->Send();
      Next()->async()->StartSet(&call->context, &call->request, &call->set,
                                [this, call, id](grpc::Status s) {
                                  Done(s, call->sent, counters_.sets_started,
                                       "StartSet");
                                  TurnDone(id);
                                });
    });
  }
  void End(const LoadStation& station) {
    auto call = std::make_shared<Call<v1::EndSetRequest>>();
    call->request.set_station_id(station.id());
    InTurn(station.id(), [this, call, id = station.id()] {
      call->Send();
      Next()->async()->EndSet(&call->context, &call->request, &call->set,
                              [this, call, id](grpc::Status s) {
                                Done(s, call->sent, counters_.sets_ended,
                                     "EndSet");
                                TurnDone(id);
                              });
    });
  }

 private:
  template <typename Request>
  struct Call {
    // When its turn comes, not when queued: the wait behind the station's
    // previous call is that call's time.
    void Send() {
      sent = Clock::now();
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(30));
    }
    Clock::time_point sent;
    grpc::ClientContext context;
    Request request;
    v1::ExerciseSet set;
  };
  v1::Clinic::Stub* Next() {
    return clinics_[next_.fetch_add(1) % clinics_.size()].get();
  }
  struct Lane {
    bool busy = false;
    std::deque<std::function<void()>> waiting;
  };
  void InTurn(const std::string& station_id, std::function<void()> call) {
    {
      std::lock_guard<std::mutex> lock(lanes_mu_);
      if (stopping_) return;
      Lane& lane = lanes_[station_id];
      if (lane.busy) {
        lane.waiting.push_back(std::move(call));
        return;
      }
      lane.busy = true;
      ++calls_under_way_;
    }
    call();
  }
  void TurnDone(const std::string& station_id) {
    std::function<void()> next;
    {
      std::lock_guard<std::mutex> lock(lanes_mu_);
      Lane& lane = lanes_[station_id];
      if (lane.waiting.empty()) {
        lane.busy = false;
        --calls_under_way_;
        // Under the lock: Stop() may return, and this object go, at once.
        idle_.notify_all();
        return;
      }
      next = std::move(lane.waiting.front());
      lane.waiting.pop_front();
    }
    next();
  }
  void Done(const grpc::Status& s, Clock::time_point sent,
            std::atomic<int64_t>& ok, const char* what) {
    counters_.set_call.Add(absl::FromChrono(Clock::now() - sent));
    if (s.ok()) {
      ok.fetch_add(1);
    } else {
      counters_.set_errors.fetch_add(1);
      counters_.Error(absl::StrCat(what, ": ", s.error_message()));
    }
  }

  Counters& counters_;
  std::vector<std::unique_ptr<v1::Clinic::Stub>> clinics_;
  std::atomic<size_t> next_{0};
  std::mutex lanes_mu_;
  std::map<std::string, Lane> lanes_;
  bool stopping_ = false;
  int calls_under_way_ = 0;  // one at most per lane
  std::condition_variable idle_;
};

// Reads WatchClinic and times each repetition from its end (data time) to
// its arrival here.
class LatencyWatch {
 public:
  LatencyWatch(const FleetOptions& options, Counters& counters,
               const std::vector<std::unique_ptr<LoadStation>>& stations)
      : counters_(counters) {
    for (const auto& s : stations) offsets_[s->id()] = s->offset_us();
    dashboard_ = v1::Dashboard::NewStub(CreateStaffChannel(
        options.hub_address, options.credentials, options.staff_tokens[0]));
    thread_ = std::thread([this] { Run(); });
  }
  ~LatencyWatch() {
    context_.TryCancel();
    thread_.join();
  }

 private:
  void Run() {
    auto reader = dashboard_->WatchClinic(&context_, {});
    v1::ClinicEvent event;
    while (reader->Read(&event)) {
      if (!event.has_repetition()) continue;
      const int64_t arrived_us = absl::ToUnixMicros(absl::Now());
      const v1::Repetition& rep = event.repetition();
      const auto it = offsets_.find(rep.station_id());
      if (it == offsets_.end()) continue;
      counters_.repetitions.fetch_add(1);
      const int64_t end_us = rep.end_us() + it->second;
      counters_.repetition_latency.Add(absl::Microseconds(arrived_us - end_us));
      counters_.repetition_published.Add(absl::Microseconds(
          TimeUtil::TimestampToMicroseconds(event.time()) - end_us));
    }
    reader->Finish();
  }

  Counters& counters_;
  std::map<std::string, int64_t> offsets_;
  std::unique_ptr<v1::Dashboard::Stub> dashboard_;
  grpc::ClientContext context_;
  std::thread thread_;
};

absl::StatusOr<std::vector<int64_t>> CreatePatients(
    const FleetOptions& options) {
  std::vector<int64_t> ids;
  if (options.staff_tokens.empty()) {
    ids.assign(static_cast<size_t>(options.stations), 0);
    return ids;
  }
  // Each therapist registers their own stations' patients: one person's
  // calls are rate-limited (a burst of 300).
  std::vector<std::unique_ptr<v1::Clinic::Stub>> clinics;
  for (const std::string& token : options.staff_tokens) {
    clinics.push_back(v1::Clinic::NewStub(
        CreateStaffChannel(options.hub_address, options.credentials, token)));
  }
  for (int i = 0; i < options.stations; ++i) {
    v1::Clinic::Stub* clinic =
        clinics[static_cast<size_t>(i) % clinics.size()].get();
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    v1::CreatePatientRequest req;
    req.set_display_name(absl::StrCat("Load patient ", i + 1));
    v1::Patient patient;
    if (auto s = clinic->CreatePatient(&ctx, req, &patient); !s.ok()) {
      return absl::UnavailableError(
          absl::StrCat("cannot register patients: ", s.error_message()));
    }
    ids.push_back(patient.patient_id());
  }
  return ids;
}

}  // namespace

absl::StatusOr<PregeneratedSet> PregenerateSet(const std::string& profile_name,
                                               uint64_t seed,
                                               absl::Duration batch_period) {
  auto profile = ProfileByName(profile_name);
  if (!profile.ok()) return profile.status();
  if (batch_period < absl::Milliseconds(5) || batch_period > absl::Seconds(1)) {
    return absl::InvalidArgumentError("batch period must be 5 ms to 1 s");
  }
  profile->stance_side = StanceSide::kLeft;
  auto source = station::MakeSimulatedSource(*profile, seed, 0);
  if (auto s = source->Start(); !s.ok()) return s;
  PregeneratedSet out;
  out.sensors = source->Sensors();
  out.batch_period = batch_period;
  const int64_t period_us = absl::ToInt64Microseconds(batch_period);
  const int64_t lead_us = absl::ToInt64Microseconds(kStandingLead);
  const int64_t tail_us = absl::ToInt64Microseconds(kStandingTail);
  bool started = false;
  int64_t played_at = -1;
  for (int64_t k = 0;; ++k) {
    const int64_t now = (k + 1) * period_us;
    if (!started && now > lead_us) {
      source->OnSetStarted(k * period_us, StanceSide::kLeft);
      out.set_start_batch = static_cast<size_t>(k);
      started = true;
    }
    v1::SampleBatch batch;
    if (auto s = source->Poll(now, &batch); !s.ok()) return s;
    out.samples += SampleCount(batch);
    out.batches.push_back(std::move(batch));
    if (started && played_at < 0 && source->SetPlayed()) {
      played_at = now;
      out.set_end_batch = static_cast<size_t>(
          k + absl::ToInt64Microseconds(kEndSetAfter) / period_us);
    }
    if (played_at >= 0 && now >= played_at + tail_us) break;
    if (now > int64_t{600} * 1'000'000) {
      return absl::InternalError("the simulated set did not end in 10 min");
    }
  }
  return out;
}

absl::StatusOr<FleetResult> RunFleet(const PregeneratedSet& set,
                                     const FleetOptions& options) {
  if (options.stations < 1) {
    return absl::InvalidArgumentError("stations must be at least 1");
  }
  auto patients = CreatePatients(options);
  if (!patients.ok()) return patients.status();
  Counters counters;
  std::mt19937_64 random(42);
  std::vector<std::unique_ptr<LoadStation>> stations;
  for (int i = 0; i < options.stations; ++i) {
    stations.push_back(std::make_unique<LoadStation>(
        absl::StrCat(options.station_prefix, i + 1),
        (*patients)[static_cast<size_t>(i)], set,
        std::uniform_int_distribution<size_t>(0,
                                              set.batches.size() - 1)(random),
        counters, options.late_after));
  }

  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  std::vector<std::thread> io_threads;
  for (int i = 0; i < std::max(1, options.io_threads); ++i) {
    io_threads.emplace_back([&io] { io.run(); });
  }
  station::StreamTracker tracker;
  const int64_t start_us = station::MonotonicMicros();
  for (auto& s : stations) {
    s->Open(options.hub_address,
            options.station_credentials ? options.station_credentials(s->id())
                                        : options.credentials,
            io, tracker, start_us);
  }
  SetSchedule schedule(options, counters);
  std::unique_ptr<LatencyWatch> watch;
  if (schedule.enabled()) {
    watch = std::make_unique<LatencyWatch>(options, counters, stations);
  }

  // Batch k of every station goes out once its period has passed, as a
  // real-time station sends it.
  const auto started = Clock::now();
  const int64_t epoch_us = station::MonotonicMicros();
  for (auto& s : stations) s->SetEpoch(epoch_us);
  const auto period = absl::ToChronoMicroseconds(set.batch_period);
  const auto until = started + absl::ToChronoMicroseconds(options.duration);
  uint64_t k = 0;
  for (auto due = started + period; due <= until; due += period, ++k) {
    std::this_thread::sleep_until(due);
    for (auto& s : stations) {
      const size_t j = s->SendBatch(k);
      if (!schedule.enabled()) continue;
      // A station whose replay begins mid-set waits for the next one.
      if (j == set.set_start_batch && !s->in_set) {
        schedule.Start(*s);
        s->in_set = true;
      } else if (j == set.set_end_batch && s->in_set) {
        schedule.End(*s);
        s->in_set = false;
      }
    }
    counters.send_lag.Add(absl::FromChrono(Clock::now() - due));
  }
  const absl::Duration ran = absl::FromChrono(Clock::now() - started);

  // The last acknowledgements.
  const auto drain_until =
      Clock::now() + absl::ToChronoMicroseconds(options.drain);
  while (Clock::now() < drain_until) {
    int64_t unacked = 0;
    for (auto& s : stations) unacked += s->Unacked();
    if (unacked == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  schedule.Stop();
  FleetResult result;
  result.stations = options.stations;
  result.ran = ran;
  for (auto& s : stations) result.batches_lost += s->Unacked();
  watch.reset();
  for (auto& s : stations) s->Close();
  tracker.WaitAllClosed();
  work.reset();
  io.stop();
  for (auto& t : io_threads) t.join();

  result.batches_sent = counters.batches_sent;
  result.batches_acked = counters.batches_acked;
  result.samples_sent = counters.samples_sent;
  result.batches_late = counters.batches_late;
  result.ack_lag = counters.ack_lag.Summary();
  result.streams_ended = counters.streams_ended;
  result.sets_started = counters.sets_started;
  result.sets_ended = counters.sets_ended;
  result.set_errors = counters.set_errors;
  result.set_call = counters.set_call.Summary();
  result.repetitions = counters.repetitions;
  result.repetition_latency = counters.repetition_latency.Summary();
  result.repetition_published = counters.repetition_published.Summary();
  result.send_lag = counters.send_lag.Summary();
  result.first_error = counters.first_error;
  return result;
}

std::string ResultJson(const FleetResult& r) {
  auto pct = [](const Percentiles& p) {
    return absl::StrFormat(
        "{\"count\":%d,\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"max_ms\":%.1f}",
        p.count, p.p50_ms, p.p99_ms, p.max_ms);
  };
  std::string error;
  for (char c : r.first_error) {
    if (c == '"' || c == '\\') error += '\\';
    error += (static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
  }
  return absl::StrFormat(
      "{\"stations\":%d,\"seconds\":%.1f,\"batches_sent\":%d,"
      "\"batches_acked\":%d,\"samples_sent\":%d,\"batches_lost\":%d,"
      "\"batches_late\":%d,\"ack_lag\":%s,\"streams_ended\":%d,"
      "\"sets_started\":%d,\"sets_ended\":%d,\"set_errors\":%d,"
      "\"set_call\":%s,\"repetitions\":%d,\"repetition_latency\":%s,"
      "\"repetition_published\":%s,\"send_lag\":%s,\"first_error\":\"%s\"}",
      r.stations, absl::ToDoubleSeconds(r.ran), r.batches_sent, r.batches_acked,
      r.samples_sent, r.batches_lost, r.batches_late, pct(r.ack_lag),
      r.streams_ended, r.sets_started, r.sets_ended, r.set_errors,
      pct(r.set_call), r.repetitions, pct(r.repetition_latency),
      pct(r.repetition_published), pct(r.send_lag), error);
}

}  // namespace stephub::bench
