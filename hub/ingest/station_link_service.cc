// One reactor per station stream; see station_link_service.h.
//
// Threads: gRPC calls OnReadDone/OnWriteDone/OnDone; the store's writer
// thread calls commit callbacks; the bays call SendFeedback from whatever
// thread scored or started a set. All of them meet in Link, whose mutex
// guards the outbox and the stream's life; gRPC operations are started
// outside that mutex.
#include "hub/ingest/station_link_service.h"

#include <algorithm>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/tls.h"

namespace stephub::ingest {
namespace {

// Messages waiting to be written to one station before its pings are
// refused. Acks and feedback coalesce (at most one of each waits), so only
// pongs could pile up: the outbox of a station that never reads stays
// under kMaxOutbox + 3 messages (with the welcome).
constexpr size_t kMaxOutbox = 256;

// A stream's arena for its received messages: a full-rate batch (45
// samples in five arrays per sensor) takes about 3 KiB; a larger one
// borrows blocks from malloc until the next message.
constexpr size_t kArenaBlockBytes = 16 << 10;

google::protobuf::ArenaOptions ArenaOptionsOver(char* block) {
  google::protobuf::ArenaOptions options;
  options.initial_block = block;
  options.initial_block_size = kArenaBlockBytes;
  return options;
}

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      std::string(s.message()));
}

// Parses a received message, from gRPC's buffer where it is one slice (the
// usual case), else from a copy in one piece.
absl::Status ParseReceived(const grpc::ByteBuffer& buffer,
                           v1::StationMessage* message) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) {
    return absl::InvalidArgumentError("unreadable message");
  }
  if (slices.size() == 1) {
    return ParseStationMessage(
        absl::string_view(reinterpret_cast<const char*>(slices[0].begin()),
                          slices[0].size()),
        message);
  }
  std::string flat;
  flat.reserve(buffer.Length());
  for (const grpc::Slice& slice : slices) {
    flat.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return ParseStationMessage(flat, message);
}

grpc::ByteBuffer BytesOf(const v1::HubMessage& message) {
  grpc::Slice slice(message.SerializeAsString());
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace

// Link and StationStream are named (not in the anonymous namespace) because
// DueAcks, declared in the header, holds Links.
class StationStream;

// The part of a stream that commit callbacks and the bays may reach after
// the reactor itself is gone.
class Link : public StationConnection,
             public std::enable_shared_from_this<Link> {
 public:
  explicit Link(StationStream* stream) : stream_(stream) {}

  void SendFeedback(const v1::StationFeedback& feedback) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finish_requested_) return;
      // Feedback is the bay's whole state, so only the newest unsent one
      // matters: a station that never reads holds one, not one per
      // repetition.
      auto pending = std::find_if(
          outbox_.begin(), outbox_.end(),
          [](const v1::HubMessage& m) { return m.has_feedback(); });
      if (pending != outbox_.end()) {
        *pending->mutable_feedback() = feedback;
      } else {
        v1::HubMessage msg;
        *msg.mutable_feedback() = feedback;
        outbox_.push_back(std::move(msg));
      }
    }
    Pump();
  }
  void Evict() override;

  void Send(v1::HubMessage msg) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finish_requested_) return;
      outbox_.push_back(std::move(msg));
    }
    Pump();
  }

  void Acknowledge(uint64_t seq) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finish_requested_) return;
      // Commits complete in order, so the newest ack covers older ones
      // still waiting in the outbox: a station that never reads holds one
      // ack here, however many batches it sends.
      auto pending =
          std::find_if(outbox_.begin(), outbox_.end(),
                       [](const v1::HubMessage& m) { return m.has_ack(); });
      if (pending != outbox_.end()) {
        pending->mutable_ack()->set_durable_seq(seq);
      } else {
        v1::HubMessage msg;
        msg.mutable_ack()->set_durable_seq(seq);
        outbox_.push_back(std::move(msg));
      }
    }
    Pump();
  }

  // A batch up to `seq` is durable. Returns true when the link was not yet
  // due an acknowledgement: the caller then lists it with DueAcks.
  bool MarkDurable(uint64_t seq) {
    std::lock_guard<std::mutex> lock(mu_);
    durable_seq_ = std::max(durable_seq_, seq);
    if (ack_due_) return false;
    ack_due_ = true;
    return true;
  }
  void SendDueAck() {
    uint64_t seq;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!ack_due_) return;
      ack_due_ = false;
      seq = durable_seq_;
    }
    Acknowledge(seq);
  }

  // The station half-closed and everything it sent is committed: its last
  // acknowledgement goes first (the group's acks are sent only after all of
  // the group's callbacks, and once the finish is requested an ack is
  // dropped), then the end.
  void FinishAcknowledged() {
    SendDueAck();
    RequestFinish(grpc::Status::OK);
  }

  // Ends the stream with `status` once the outbox is written.
  void RequestFinish(grpc::Status status) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finish_requested_) return;
      finish_requested_ = true;
      finish_status_ = std::move(status);
    }
    Pump();
  }

  size_t Backlog() {
    std::lock_guard<std::mutex> lock(mu_);
    return outbox_.size();
  }

  void CommitQueued(size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    ++uncommitted_;
    uncommitted_bytes_ += bytes;
  }
  // Returns true when the caller should resume reading.
  bool CommitDone(size_t bytes, const StationLinkOptions& options);
  // Returns false when reading must pause until commits drain.
  bool MayReadOn(const StationLinkOptions& options) {
    std::lock_guard<std::mutex> lock(mu_);
    if (finish_requested_) return false;
    if (!BelowLimits(options)) {
      read_paused_ = true;
      return false;
    }
    return true;
  }
  void ReadsDone() {
    bool finish;
    {
      std::lock_guard<std::mutex> lock(mu_);
      reads_done_ = true;
      finish = uncommitted_ == 0;
    }
    if (finish) FinishAcknowledged();
  }

  void WriteDone() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
    }
    Pump();
  }
  void Gone() {
    std::lock_guard<std::mutex> lock(mu_);
    stream_ = nullptr;
  }

 private:
  void Pump();
  // The caller holds mu_.
  bool BelowLimits(const StationLinkOptions& options) const {
    return uncommitted_ < options.max_uncommitted_batches &&
           uncommitted_bytes_ < options.max_uncommitted_bytes;
  }

  std::mutex mu_;
  StationStream* stream_;  // null once gRPC is done with the stream
  std::deque<v1::HubMessage> outbox_;
  bool writing_ = false;
  bool finish_requested_ = false;
  bool finished_ = false;
  grpc::Status finish_status_;
  int uncommitted_ = 0;
  size_t uncommitted_bytes_ = 0;
  bool read_paused_ = false;
  bool reads_done_ = false;
  uint64_t durable_seq_ = 0;
  bool ack_due_ = false;  // durable_seq_ not yet acknowledged
};

class DueAcks {
 public:
  void Add(std::shared_ptr<Link> link) {
    std::lock_guard<std::mutex> lock(mu_);
    links_.push_back(std::move(link));
  }
  // After a group commit, on the writer thread.
  void SendAll() {
    std::vector<std::shared_ptr<Link>> links;
    {
      std::lock_guard<std::mutex> lock(mu_);
      links.swap(links_);
    }
    for (const auto& link : links) link->SendDueAck();
  }

 private:
  std::mutex mu_;
  std::vector<std::shared_ptr<Link>> links_;
};

class StationStream
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  StationStream(grpc::CallbackServerContext* context, store::ClinicStore& store,
                Bays& bays, StationAccess& access,
                const StationLinkOptions& options,
                std::shared_ptr<DueAcks> due_acks)
      : context_(context),
        store_(store),
        bays_(bays),
        access_(access),
        options_(options),
        due_acks_(std::move(due_acks)),
        link_(std::make_shared<Link>(this)) {
    StartRead(&in_bytes_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      link_->ReadsDone();
      return;
    }
    arena_.Reset();
    in_ = google::protobuf::Arena::CreateMessage<v1::StationMessage>(&arena_);
    absl::Status status = ParseReceived(in_bytes_, in_);
    in_bytes_.Clear();
    if (status.ok()) status = Dispatch();
    if (!status.ok()) {
      if (!hello_.station_id().empty()) {
        Log(LogLevel::kWarning, "station_stream_rejected")
            .With("station", hello_.station_id())
            .With("error", status);
      }
      link_->RequestFinish(ToGrpc(status));
      return;
    }
    ReadNext();
  }

  void ReadNext() {
    if (link_->MayReadOn(options_)) StartRead(&in_bytes_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      // The station is gone; reads will fail and end the stream.
      context_->TryCancel();
    }
    link_->WriteDone();
  }

  void OnDone() override {
    link_->Gone();
    if (admitted_) access_.Closed(access_token_);
    if (connected_) bays_.Disconnect(hello_.station_id(), token_);
    delete this;
  }

  grpc::CallbackServerContext* context() { return context_; }
  grpc::ByteBuffer out_;  // the message being written; one write at a time

 private:
  absl::Status Dispatch() {
    switch (in_->message_case()) {
      case v1::StationMessage::kHello:
        return OnHello(in_->hello());
      case v1::StationMessage::kBatch:
        return OnBatch(in_->batch());
      default:
        break;
    }
    if (!connected_) {
      return absl::FailedPreconditionError(
          "a message came before the hello: send StationHello first");
    }
    switch (in_->message_case()) {
      case v1::StationMessage::kClockPing:
        return OnClockPing(in_->clock_ping());
      case v1::StationMessage::kHealth:
        if (auto s = ValidateHealth(in_->health(), hello_); !s.ok()) return s;
        bays_.UpdateHealth(hello_.station_id(), in_->health());
        return absl::OkStatus();
      case v1::StationMessage::kClockOffset:
        if (auto s = ValidateClockOffset(in_->clock_offset()); !s.ok()) {
          return s;
        }
        bays_.UpdateClock(hello_.station_id(), in_->clock_offset());
        return absl::OkStatus();
      default:
        return absl::InvalidArgumentError("empty StationMessage");
    }
  }

  // Answered at once, on the callback thread: the pong's times are only as
  // good as the delay between reading the ping and queueing the answer.
  absl::Status OnClockPing(const v1::ClockPing& ping) {
    if (link_->Backlog() > kMaxOutbox) {
      // A station that pings but does not read would pile up pongs.
      return absl::ResourceExhaustedError(absl::StrCat(
          "more than ", kMaxOutbox,
          " messages to this station are unread; read the stream"));
    }
    const int64_t received_us = absl::GetCurrentTimeNanos() / 1000;
    v1::HubMessage pong;
    v1::ClockPong* p = pong.mutable_clock_pong();
    p->set_ping_id(ping.ping_id());
    p->set_station_send_us(ping.station_send_us());
    p->set_hub_receive_us(received_us);
    p->set_hub_send_us(absl::GetCurrentTimeNanos() / 1000);
    link_->Send(std::move(pong));
    return absl::OkStatus();
  }

  absl::Status OnHello(const v1::StationHello& hello) {
    if (connected_) {
      return absl::FailedPreconditionError("hello sent twice on one stream");
    }
    if (auto s = ValidateHello(hello, options_.limits); !s.ok()) return s;
    // The station is who its certificate says, not who its hello says.
    const std::optional<pki::CertInfo> cert =
        tls::PeerCertificate(*context_->auth_context());
    auto admitted = access_.Admit(
        cert, hello.station_id(),
        [link = std::weak_ptr<Link>(link_)](const absl::Status& why) {
          if (auto l = link.lock()) l->RequestFinish(ToGrpc(why));
        });
    if (!admitted.ok()) {
      Log(LogLevel::kWarning, "station_refused")
          .With("station", hello.station_id())
          .With("certificate", cert ? cert->common_name : "none")
          .With("peer", context_->peer())
          .With("error", admitted.status());
      return admitted.status();
    }
    admitted_ = true;
    access_token_ = *admitted;
    if (auto s = bays_.MayConnect(hello.station_id(), options_.max_stations);
        !s.ok()) {
      return s;
    }
    auto durable = store_.DurableSeq(hello.station_id(), hello.boot_id());
    if (!durable.ok()) {
      return absl::UnavailableError(absl::StrCat("hub storage unavailable: ",
                                                 durable.status().message()));
    }
    hello_ = hello;
    validator_.emplace(hello, *durable, options_.limits);
    v1::HubMessage welcome;
    welcome.mutable_welcome()->set_durable_seq(*durable);
    link_->Send(std::move(welcome));
    token_ = bays_.Connect(hello, link_);
    connected_ = true;
    return absl::OkStatus();
  }

  absl::Status OnBatch(const v1::SampleBatch& batch) {
    if (!connected_) {
      return absl::FailedPreconditionError(
          "a batch came before the hello: send StationHello first");
    }
    const uint64_t expected_seq = validator_->last_seq() + 1;
    if (auto s = validator_->Accept(batch); !s.ok()) {
      // The prefix is part of the contract (station_link.proto): it tells
      // the station which batch it must not send again.
      return absl::Status(s.code(), absl::StrCat("batch ", batch.seq(),
                                                 " refused: ", s.message()));
    }
    for (const BatchValidator::ClockStep& step : validator_->clock_steps()) {
      if (++clock_steps_ > kMaxClockStepEvents) break;
      store_.AddEvent(
          "station_clock_back", hello_.station_id(),
          absl::StrCat("sensor ", step.sensor_id, ": batch ", batch.seq(),
                       " starts at t_us ", step.to_us,
                       ", not after the previous batch's ", step.from_us,
                       " (station clock restarted, or an earlier sample was "
                       "far ahead); accepted, scoring drops what overlaps",
                       clock_steps_ == kMaxClockStepEvents
                           ? "; further steps on this stream not recorded"
                           : ""));
    }
    if (batch.seq() != expected_seq) {
      store_.AddEvent(
          "station_spool_loss", hello_.station_id(),
          absl::StrCat("batches ", expected_seq, " to ", batch.seq() - 1,
                       " of boot ", hello_.boot_id(),
                       " were lost on the station (spool damage, or refused by "
                       "the hub)"));
    }
    store::BatchRecord record = store::BatchRecordOf(
        batch, hello_.station_id(), hello_.boot_id(), absl::Now());

    const size_t bytes = record.payload.size();
    link_->CommitQueued(bytes);
    bays_.BatchQueued(hello_.station_id());
    const uint64_t seq = batch.seq();
    store_.AppendBatch(std::move(record),
                       [link = link_, this_station = hello_.station_id(), seq,
                        &bays = bays_, options = options_, bytes, stream = this,
                        due_acks = due_acks_](absl::Status s) {
                         if (!s.ok()) {
                           Log(LogLevel::kError, "batch_not_stored")
                               .With("station", this_station)
                               .With("seq", seq)
                               .With("error", s);
                           link->RequestFinish(grpc::Status(
                               grpc::StatusCode::UNAVAILABLE,
                               absl::StrCat("hub could not store batch ", seq,
                                            ": ", s.message())));
                         } else {
                           bays.BatchCommitted(this_station, seq);
                           if (link->MarkDurable(seq)) due_acks->Add(link);
                         }
                         if (link->CommitDone(bytes, options))
                           stream->StartRead(&stream->in_bytes_);
                       });
    // Scoring after queueing keeps a repetition's row behind the batches
    // it came from in the writer's queue.
    bays_.ScoreBatch(hello_.station_id(), hello_.boot_id(), batch);
    return absl::OkStatus();
  }

  grpc::CallbackServerContext* const context_;
  store::ClinicStore& store_;
  Bays& bays_;
  StationAccess& access_;
  const StationLinkOptions& options_;
  const std::shared_ptr<DueAcks> due_acks_;
  std::shared_ptr<Link> link_;

  // Read raw, so that bytes protobuf cannot parse are refused with a
  // status that says so: gRPC's own parse would end the stream as if the
  // station had closed it, with OK.
  grpc::ByteBuffer in_bytes_;
  // Each message is parsed onto arena_, emptied before the next one: a
  // batch's dozens of sample arrays then cost no malloc and free each
  // (they were an eighth of the hub's CPU at 400 stations).
  std::unique_ptr<char[]> arena_block_ =
      std::make_unique<char[]>(kArenaBlockBytes);
  google::protobuf::Arena arena_{ArenaOptionsOver(arena_block_.get())};
  v1::StationMessage* in_ = nullptr;  // on arena_
  v1::StationHello hello_;
  std::optional<BatchValidator> validator_;
  // A station whose clock misbehaves on every batch must not flood the
  // event log.
  static constexpr int kMaxClockStepEvents = 10;
  int clock_steps_ = 0;
  bool connected_ = false;
  uint64_t token_ = 0;
  bool admitted_ = false;  // by access_, with access_token_
  uint64_t access_token_ = 0;
};

bool Link::CommitDone(size_t bytes, const StationLinkOptions& options) {
  bool resume = false;
  bool finish = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    --uncommitted_;
    uncommitted_bytes_ -= bytes;
    // A paused read is resumed only while the stream lives: the reactor is
    // not finished until this flag is false, so stream_ is valid here.
    if (read_paused_ && BelowLimits(options) && !finish_requested_ &&
        stream_ != nullptr) {
      read_paused_ = false;
      resume = true;
    }
    finish = reads_done_ && uncommitted_ == 0;
  }
  if (finish) FinishAcknowledged();
  return resume;
}

void Link::Evict() {
  std::lock_guard<std::mutex> lock(mu_);
  if (stream_ != nullptr && !finished_) stream_->context()->TryCancel();
}

void Link::Pump() {
  StationStream* stream = nullptr;
  bool write = false;
  bool finish = false;
  grpc::Status status;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stream_ == nullptr || finished_ || writing_) return;
    if (!outbox_.empty()) {
      writing_ = true;
      write = true;
      stream_->out_ = BytesOf(outbox_.front());
      outbox_.pop_front();
    } else if (finish_requested_) {
      // gRPC completes a read still outstanding with ok=false after Finish.
      finished_ = true;
      finish = true;
      status = finish_status_;
    }
    stream = stream_;
  }
  if (write) stream->StartWrite(&stream->out_);
  if (finish) stream->Finish(status);
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
StationLinkService::Stream(grpc::CallbackServerContext* context) {
  return new StationStream(context, store_, bays_, access_, options_,
                           due_acks_);
}

StationLinkService::StationLinkService(store::ClinicStore& store, Bays& bays,
                                       StationAccess& access,
                                       StationLinkOptions options)
    : store_(store),
      bays_(bays),
      access_(access),
      options_(options),
      due_acks_(std::make_shared<DueAcks>()) {
  // The hook owns the list too: the hub drains its store after this
  // service is gone.
  store_.SetAfterGroupCommit([acks = due_acks_] { acks->SendAll(); });
}

}  // namespace stephub::ingest
