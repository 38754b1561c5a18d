// StationLink.Stream on gRPC's callback API: validates what a station sends,
// queues it for a group commit, scores it, and acknowledges only what is
// durably stored. Callback threads never wait for the disk.
#ifndef STEPHUB_HUB_INGEST_STATION_LINK_SERVICE_H_
#define STEPHUB_HUB_INGEST_STATION_LINK_SERVICE_H_

#include "hub/ingest/bays.h"
#include "hub/ingest/station_access.h"
#include "hub/ingest/validate.h"
#include "hub/store/store.h"
#include "stephub/v1/station_link.grpc.pb.h"

namespace stephub::ingest {

struct StationLinkOptions {
  IngestLimits limits;
  // Batches a stream may have queued for commit before the hub stops
  // reading from it: bounds the memory one station can make the hub hold.
  int max_uncommitted_batches = 256;
};

class StationLinkService final : public v1::StationLink::CallbackService {
 public:
  // `access` decides which certificate may stream as which station.
  StationLinkService(store::ClinicStore& store, Bays& bays,
                     StationAccess& access, StationLinkOptions options = {})
      : store_(store), bays_(bays), access_(access), options_(options) {}

  grpc::ServerBidiReactor<v1::StationMessage, v1::HubMessage>* Stream(
      grpc::CallbackServerContext* context) override;

 private:
  store::ClinicStore& store_;
  Bays& bays_;
  StationAccess& access_;
  const StationLinkOptions options_;
};

}  // namespace stephub::ingest

#endif  // STEPHUB_HUB_INGEST_STATION_LINK_SERVICE_H_
