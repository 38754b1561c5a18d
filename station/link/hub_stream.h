// One StationLink stream to the hub, on gRPC's callback API so that no
// station thread ever blocks on the network: messages to the hub queue in an
// outbox and are written one at a time; everything the hub sends is handed
// to the station's io_context, where all station state lives.
#ifndef STEPHUB_STATION_LINK_HUB_STREAM_H_
#define STEPHUB_STATION_LINK_HUB_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

#include "stephub/v1/station_link.grpc.pb.h"

namespace stephub::station {

// Counts streams whose gRPC call has not finished, so that their owner can
// wait for every callback to be over before it goes away.
class StreamTracker {
 public:
  void Opened();
  void Closed();
  void WaitAllClosed();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int open_ = 0;
};

class HubStream
    : public grpc::ClientBidiReactor<v1::StationMessage, v1::HubMessage> {
 public:
  // Called on the io_context. received_us is the station clock when the
  // message arrived (a pong's fourth timestamp).
  using MessageHandler =
      std::function<void(v1::HubMessage message, int64_t received_us)>;
  using ClosedHandler = std::function<void(grpc::Status status)>;

  // Starts the call; `hello` is written first. The stream keeps itself
  // alive until gRPC is done with it, then reports on_closed.
  static std::shared_ptr<HubStream> Open(v1::StationLink::Stub* stub,
                                         boost::asio::io_context& io,
                                         StreamTracker* tracker,
                                         v1::StationMessage hello,
                                         MessageHandler on_message,
                                         ClosedHandler on_closed,
                                         std::function<int64_t()> clock);

  // Thread-safe. Messages after Close/Cancel are dropped.
  void Send(v1::StationMessage message);
  // Messages waiting to be written (the station paces itself by this).
  size_t Queued() const;
  // Half-closes once the outbox is written; the hub then ends the stream.
  void Close();
  void Cancel();

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnWritesDoneDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  HubStream(boost::asio::io_context& io, StreamTracker* tracker,
            MessageHandler on_message, ClosedHandler on_closed,
            std::function<int64_t()> clock);
  // Starts the next write if none is in flight; called with mu_ held.
  // Returns true when it started the half-close, after which no operation
  // is started from outside a reaction: the caller then drops the hold.
  bool PumpLocked();
  // From now on nothing is started from outside gRPC's reactions; lets
  // OnDone come. Called without mu_ held (it may run OnDone at once).
  void ReleaseHoldOnce();

  boost::asio::io_context& io_;
  StreamTracker* const tracker_;
  const MessageHandler on_message_;
  const ClosedHandler on_closed_;
  const std::function<int64_t()> clock_;
  grpc::ClientContext context_;
  v1::HubMessage in_;

  mutable std::mutex mu_;
  std::deque<v1::StationMessage> outbox_;
  v1::StationMessage writing_message_;
  bool writing_ = false;
  bool close_requested_ = false;
  bool writes_done_started_ = false;
  bool done_ = false;
  // Send/Close start operations from the io thread, outside gRPC's
  // reactions; the hold keeps OnDone (and the call's end) from racing them.
  bool hold_released_ = false;
  bool closing_ = false;  // the stream failed or is half-closed: no more sends
  std::shared_ptr<HubStream> self_;  // released in OnDone
};

}  // namespace stephub::station

#endif  // STEPHUB_STATION_LINK_HUB_STREAM_H_
