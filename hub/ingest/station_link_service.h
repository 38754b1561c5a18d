// StationLink.Stream on gRPC's callback API: validates what a station sends,
// queues it for a group commit, scores it, and acknowledges only what is
// durably stored. Callback threads never wait for the disk.
#ifndef STEPHUB_HUB_INGEST_STATION_LINK_SERVICE_H_
#define STEPHUB_HUB_INGEST_STATION_LINK_SERVICE_H_

#include <cstddef>
#include <memory>

#include "hub/ingest/bays.h"
#include "hub/ingest/station_access.h"
#include "hub/ingest/validate.h"
#include "hub/store/store.h"
#include "stephub/v1/station_link.grpc.pb.h"

namespace stephub::ingest {

class DueAcks;

struct StationLinkOptions {
  IngestLimits limits;
  // Batches a stream may have queued for commit before the hub stops
  // reading from it: bounds the memory one station can make the hub hold.
  int max_uncommitted_batches = 256;
  // The same in bytes: 256 batches of the 1 MiB a message may be would be
  // 256 MiB; a real station's 10-40 KiB batches never come near.
  size_t max_uncommitted_bytes = 16u << 20;
  // Stations the hub keeps a bay for; a hello from one more is refused
  // with RESOURCE_EXHAUSTED. Until stations are authenticated, anyone who
  // can reach the port could otherwise make it remember any number.
  size_t max_stations = 1000;
};

// Raw messages in and out: the service parses what stations send itself
// (ParseStationMessage), to answer bytes that are no StationMessage with
// INVALID_ARGUMENT.
class StationLinkService final
    : public v1::StationLink::WithRawCallbackMethod_Stream<
          v1::StationLink::Service> {
 public:
  // `access` decides which certificate may stream as which station.
  StationLinkService(store::ClinicStore& store, Bays& bays,
                     StationAccess& access, StationLinkOptions options = {});

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Stream(
      grpc::CallbackServerContext* context) override;

 private:
  store::ClinicStore& store_;
  Bays& bays_;
  StationAccess& access_;
  const StationLinkOptions options_;
  // Streams with batches committed and not yet acknowledged: each gets one
  // acknowledgement per group commit, not one per batch.
  std::shared_ptr<DueAcks> due_acks_;
};

}  // namespace stephub::ingest

#endif  // STEPHUB_HUB_INGEST_STATION_LINK_SERVICE_H_
