// stephub-sink: the bare gRPC limit that the hub is measured against
// (docs/BENCHMARKS.md). It serves StationLink from the same protos as the
// hub and does only what a stream needs: decode each message, welcome each
// station, acknowledge each batch. No validation, scoring, storing or
// publishing: the hub's capacity divided by this one's is what those cost.
#include <grpcpp/grpcpp.h>

#include <csignal>
#include <iostream>
#include <mutex>

#include "absl/flags/flag.h"
#include "common/flags.h"
#include "common/process_setup.h"
#include "stephub/v1/station_link.grpc.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "address (port 0 picks one)");

namespace stephub::bench {
namespace {

// One station's stream: reads continuously; acknowledges the highest seq
// received, one write in flight at a time (as the hub does).
class SinkStream
    : public grpc::ServerBidiReactor<v1::StationMessage, v1::HubMessage> {
 public:
  SinkStream() { StartRead(&in_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      std::lock_guard<std::mutex> lock(mu_);
      reading_done_ = true;
      MaybeFinishLocked();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (in_.has_hello()) {
        welcome_due_ = true;
      } else if (in_.has_batch()) {
        received_seq_ = std::max(received_seq_, in_.batch().seq());
      }
      WriteNextLocked();
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) {
      reading_done_ = true;
      MaybeFinishLocked();
      return;
    }
    WriteNextLocked();
    MaybeFinishLocked();
  }

  void OnDone() override { delete this; }

 private:
  void WriteNextLocked() {
    if (writing_ || finished_) return;
    out_.Clear();
    if (welcome_due_) {
      welcome_due_ = false;
      out_.mutable_welcome()->set_durable_seq(0);
    } else if (received_seq_ > acked_seq_) {
      acked_seq_ = received_seq_;
      out_.mutable_ack()->set_durable_seq(acked_seq_);
    } else {
      return;
    }
    writing_ = true;
    StartWrite(&out_);
  }
  void MaybeFinishLocked() {
    if (reading_done_ && !writing_ && !finished_) {
      finished_ = true;
      Finish(grpc::Status::OK);
    }
  }

  v1::StationMessage in_;
  v1::HubMessage out_;
  std::mutex mu_;
  bool welcome_due_ = false;
  uint64_t received_seq_ = 0, acked_seq_ = 0;
  bool writing_ = false, reading_done_ = false, finished_ = false;
};

class Sink final : public v1::StationLink::CallbackService {
  grpc::ServerBidiReactor<v1::StationMessage, v1::HubMessage>* Stream(
      grpc::CallbackServerContext*) override {
    return new SinkStream();
  }
};

}  // namespace
}  // namespace stephub::bench

int main(int argc, char** argv) {
  stephub::ConfigureServingProcess();
  stephub::ParseFlagsAcceptingDashes(argc, argv);
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  stephub::bench::Sink sink;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen),
                           grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(1 << 20);  // as the hub
  builder.RegisterService(&sink);
  auto server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::cerr << "stephub-sink: cannot listen on "
              << absl::GetFlag(FLAGS_listen) << "\n";
    return 1;
  }
  std::cout << "stephub-sink: listening on port " << port << std::endl;
  int sig = 0;
  sigwait(&stop, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}
