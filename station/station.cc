// Station core; see station.h.
#include "station/station.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_format.h"
#include "stephub/v1/station_link.grpc.pb.h"

namespace stephub::station {

namespace {

std::string NewBootId() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd() ^
                      static_cast<uint64_t>(MonotonicMicros()));
  return absl::StrFormat("%016x", gen());
}

using Stream = grpc::ClientReaderWriter<v1::StationMessage, v1::HubMessage>;

}  // namespace

struct Station::Impl {
  StationOptions options;
  std::unique_ptr<SensorSource> source;
  const std::string boot_id = NewBootId();

  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::StationLink::Stub> stub;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<v1::SampleBatch> pending;  // sent or not, not yet acknowledged
  uint64_t next_seq = 1;
  uint64_t acked = 0;
  uint64_t dropped_batches = 0;
  bool connected = false;
  bool stream_broken = false;
  bool set_started_seen = false;  // feedback said a set is running
  v1::StanceSide set_stance_side = v1::STANCE_SIDE_LEFT;
  bool stopping = false;

  // The connection of the moment; owned by the Run thread.
  std::unique_ptr<grpc::ClientContext> context;
  std::unique_ptr<Stream> stream;
  std::thread reader;
  uint64_t sent_up_to = 0;  // highest seq written on the current stream
  int attempts = 0;
  int64_t next_attempt_us = 0;

  void Acknowledge(uint64_t seq) {
    std::lock_guard<std::mutex> lock(mu);
    acked = std::max(acked, seq);
    while (!pending.empty() && pending.front().seq() <= acked) {
      pending.pop_front();
    }
    cv.notify_all();
  }

  void ReadLoop(Stream* s) {
    v1::HubMessage msg;
    while (s->Read(&msg)) {
      if (msg.has_ack()) {
        Acknowledge(msg.ack().durable_seq());
      } else if (msg.has_feedback()) {
        {
          std::lock_guard<std::mutex> lock(mu);
          if (msg.feedback().set_active() && !set_started_seen) {
            set_started_seen = true;
            set_stance_side = msg.feedback().stance_side();
          }
        }
        if (options.on_feedback) options.on_feedback(msg.feedback());
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    stream_broken = true;
    cv.notify_all();
  }

  // Opens a stream, says hello, and learns where to resume.
  bool Connect() {
    context = std::make_unique<grpc::ClientContext>();
    stream = stub->Stream(context.get());
    v1::StationMessage hello;
    v1::StationHello* h = hello.mutable_hello();
    h->set_station_id(options.station_id);
    h->set_boot_id(boot_id);
    h->set_software_version("stephub-station 0.1");
    for (auto& sensor : source->Sensors()) *h->add_sensors() = sensor;
    v1::HubMessage welcome;
    if (!stream->Write(hello) || !stream->Read(&welcome) ||
        !welcome.has_welcome()) {
      CloseStream();
      return false;
    }
    Acknowledge(welcome.welcome().durable_seq());
    {
      std::lock_guard<std::mutex> lock(mu);
      connected = true;
      stream_broken = false;
      sent_up_to = acked;
    }
    reader = std::thread([this, s = stream.get()] { ReadLoop(s); });
    return true;
  }

  // graceful: the station said WritesDone; wait for the hub to finish the
  // stream (it does once everything is stored) instead of cancelling it.
  void CloseStream(bool graceful = false) {
    if (context && !graceful) context->TryCancel();
    if (reader.joinable()) reader.join();
    if (stream) {
      grpc::Status status = stream->Finish();
      if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
        std::cerr << "station " << options.station_id
                  << ": hub ended the stream: " << status.error_message()
                  << "\n";
      }
    }
    stream.reset();
    context.reset();
    std::lock_guard<std::mutex> lock(mu);
    connected = false;
  }

  // Writes every pending batch not yet written on this stream.
  bool SendPending() {
    std::vector<v1::StationMessage> to_send;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& batch : pending) {
        if (batch.seq() <= sent_up_to) continue;
        v1::StationMessage m;
        *m.mutable_batch() = batch;
        to_send.push_back(std::move(m));
        sent_up_to = batch.seq();
      }
    }
    for (const auto& m : to_send) {
      if (!stream->Write(m)) return false;
    }
    return true;
  }

  void Queue(v1::SampleBatch batch) {
    std::lock_guard<std::mutex> lock(mu);
    batch.set_seq(next_seq++);
    pending.push_back(std::move(batch));
    while (pending.size() > options.max_pending) {
      // Losing the oldest unacknowledged data is the only choice once the
      // buffer is full; it is counted so that the loss is visible.
      pending.pop_front();
      ++dropped_batches;
    }
  }

  absl::Duration Backoff() {
    // Exponential from 100 ms with full jitter, capped low so that a station
    // is back within moments of the network returning.
    const double cap = absl::ToDoubleSeconds(options.max_backoff);
    const double base = std::min(cap, 0.1 * (1 << std::min(attempts, 10)));
    static thread_local std::mt19937 gen(std::random_device{}());
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    return absl::Seconds(base * jitter(gen));
  }
};

Station::Station(StationOptions options, std::unique_ptr<SensorSource> source)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->source = std::move(source);
  grpc::ChannelArguments args;
  // Reconnect quickly after clinic Wi-Fi comes back (gRPC's default backoff
  // grows to two minutes).
  args.SetInt(
      GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
      static_cast<int>(absl::ToInt64Milliseconds(impl_->options.max_backoff)));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  impl_->channel = grpc::CreateCustomChannel(
      impl_->options.hub_address, grpc::InsecureChannelCredentials(), args);
  impl_->stub = v1::StationLink::NewStub(impl_->channel);
}

Station::~Station() {
  Stop();
  impl_->CloseStream();
}

void Station::Stop() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->stopping = true;
  impl_->cv.notify_all();
}

uint64_t Station::acked_seq() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->acked;
}

uint64_t Station::sent_seq() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->next_seq - 1;
}

const std::string& Station::boot_id() const { return impl_->boot_id; }

absl::Status Station::Run() {
  Impl& s = *impl_;
  const int64_t period_us = absl::ToInt64Microseconds(s.options.batch_period);
  int64_t now_us = MonotonicMicros();
  bool set_begun = false;
  for (;;) {
    bool stopping, broken, connected, set_seen;
    {
      std::lock_guard<std::mutex> lock(s.mu);
      stopping = s.stopping;
      broken = s.stream_broken;
      connected = s.connected;
      set_seen = s.set_started_seen;
    }
    if (stopping) break;
    if (connected && broken) {
      s.CloseStream();
      connected = false;
      s.next_attempt_us =
          MonotonicMicros() + absl::ToInt64Microseconds(s.Backoff());
    }
    if (!connected && MonotonicMicros() >= s.next_attempt_us) {
      if (s.Connect()) {
        s.attempts = 0;
        connected = true;
      } else {
        ++s.attempts;
        s.next_attempt_us =
            MonotonicMicros() + absl::ToInt64Microseconds(s.Backoff());
      }
    }

    if (set_seen && !set_begun) {
      v1::StanceSide side;
      {
        std::lock_guard<std::mutex> lock(s.mu);
        side = s.set_stance_side;
      }
      s.source->OnSetStarted(now_us, side == v1::STANCE_SIDE_RIGHT
                                         ? StanceSide::kRight
                                         : StanceSide::kLeft);
      set_begun = true;
    }
    // With exit_after_set, nothing after the played set is sampled, so that
    // the pending batches can drain to zero.
    const bool draining = s.options.exit_after_set && s.source->SetPlayed();
    if (!draining) {
      v1::SampleBatch batch;
      if (auto status = s.source->Poll(now_us, &batch); !status.ok()) {
        return status;
      }
      if (batch.imu_size() > 0 || batch.force_size() > 0) {
        s.Queue(std::move(batch));
      }
    }
    if (connected && !s.SendPending()) {
      std::lock_guard<std::mutex> lock(s.mu);
      s.stream_broken = true;
    }

    if (s.options.exit_after_set && s.source->SetPlayed()) {
      std::unique_lock<std::mutex> lock(s.mu);
      if (s.pending.empty()) break;
    }

    // Advance the clock one batch period.
    if (s.options.real_time) {
      now_us += period_us;
      std::unique_lock<std::mutex> lock(s.mu);
      s.cv.wait_for(lock,
                    std::chrono::microseconds(
                        std::max<int64_t>(0, now_us - MonotonicMicros())),
                    [&] { return s.stopping; });
    } else {
      now_us += period_us;
      std::unique_lock<std::mutex> lock(s.mu);
      // Never run further ahead of the hub than the in-flight window.
      s.cv.wait_for(lock, std::chrono::milliseconds(200), [&] {
        return s.stopping || s.stream_broken ||
               s.pending.size() < static_cast<size_t>(s.options.max_in_flight);
      });
    }
  }
  bool graceful = false;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    graceful = s.connected && !s.stream_broken;
  }
  if (graceful) graceful = s.stream->WritesDone();
  s.CloseStream(graceful);
  if (s.dropped_batches > 0) {
    return absl::DataLossError(
        absl::StrFormat("%d batches were dropped while the hub was unreachable",
                        s.dropped_batches));
  }
  return absl::OkStatus();
}

}  // namespace stephub::station
