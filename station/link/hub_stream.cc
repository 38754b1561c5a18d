// StationLink stream on gRPC's callback API; see hub_stream.h.
#include "station/link/hub_stream.h"

#include <boost/asio/post.hpp>

namespace stephub::station {

void StreamTracker::Opened() {
  std::lock_guard<std::mutex> lock(mu_);
  ++open_;
}

void StreamTracker::Closed() {
  std::lock_guard<std::mutex> lock(mu_);
  --open_;
  cv_.notify_all();
}

void StreamTracker::WaitAllClosed() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return open_ == 0; });
}

HubStream::HubStream(boost::asio::io_context& io, StreamTracker* tracker,
                     MessageHandler on_message, ClosedHandler on_closed,
                     std::function<int64_t()> clock)
    : io_(io),
      tracker_(tracker),
      on_message_(std::move(on_message)),
      on_closed_(std::move(on_closed)),
      clock_(std::move(clock)) {}

std::shared_ptr<HubStream> HubStream::Open(
    v1::StationLink::Stub* stub, boost::asio::io_context& io,
    StreamTracker* tracker, v1::StationMessage hello, MessageHandler on_message,
    ClosedHandler on_closed, std::function<int64_t()> clock) {
  std::shared_ptr<HubStream> stream(
      new HubStream(io, tracker, std::move(on_message), std::move(on_closed),
                    std::move(clock)));
  stream->self_ = stream;
  tracker->Opened();
  stub->async()->Stream(&stream->context_, stream.get());
  stream->AddHold();
  stream->Send(std::move(hello));
  stream->StartRead(&stream->in_);
  stream->StartCall();
  return stream;
}

void HubStream::Send(v1::StationMessage message) {
  std::lock_guard<std::mutex> lock(mu_);
  if (done_ || close_requested_ || closing_) return;
  outbox_.push_back(std::move(message));
  PumpLocked();
}

size_t HubStream::Queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return outbox_.size() + (writing_ ? 1 : 0);
}

void HubStream::Close() {
  bool release = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (done_ || close_requested_ || closing_) return;
    close_requested_ = true;
    release = PumpLocked();
  }
  if (release) ReleaseHoldOnce();
}

void HubStream::Cancel() { context_.TryCancel(); }

bool HubStream::PumpLocked() {
  if (done_ || writing_ || closing_) return false;
  if (!outbox_.empty()) {
    writing_ = true;
    writing_message_ = std::move(outbox_.front());
    outbox_.pop_front();
    StartWrite(&writing_message_);
  } else if (close_requested_ && !writes_done_started_) {
    writes_done_started_ = true;
    closing_ = true;
    StartWritesDone();
    return true;
  }
  return false;
}

void HubStream::ReleaseHoldOnce() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (hold_released_) return;
    hold_released_ = true;
    closing_ = true;
  }
  RemoveHold();
}

void HubStream::OnReadDone(bool ok) {
  if (!ok) {
    // The hub ended the stream (or it broke): nothing more will be
    // started, so OnDone may come.
    ReleaseHoldOnce();
    return;
  }
  const int64_t received_us = clock_();
  boost::asio::post(io_, [handler = on_message_, message = std::move(in_),
                          received_us]() mutable {
    handler(std::move(message), received_us);
  });
  in_.Clear();
  StartRead(&in_);
}

void HubStream::OnWriteDone(bool ok) {
  bool release = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) {
      // The stream is broken. What was queued is still in the spool and is
      // resent on the next stream.
      outbox_.clear();
      release = true;
    } else {
      release = PumpLocked();
    }
  }
  if (release) ReleaseHoldOnce();
}

void HubStream::OnWritesDoneDone(bool) {}

void HubStream::OnDone(const grpc::Status& status) {
  std::shared_ptr<HubStream> self;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    outbox_.clear();
    self = std::move(self_);
  }
  boost::asio::post(io_, [handler = on_closed_, status] { handler(status); });
  tracker_->Closed();
  // `self` keeps this object alive to the end of this function.
}

}  // namespace stephub::station
