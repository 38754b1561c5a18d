// A scored repetition (hub/scoring) as the wire and the store keep it.
#ifndef STEPHUB_HUB_INGEST_REPETITION_PROTO_H_
#define STEPHUB_HUB_INGEST_REPETITION_PROTO_H_

#include "hub/scoring/scoring.h"
#include "stephub/v1/common.pb.h"

namespace stephub::ingest {

// Number, times, pelvic drop, verdict, metrics, quality items and
// problems; what was not assessed stays absent. The set, station, patient,
// scoring version and time are the caller's to add.
v1::Repetition RepetitionToProto(const scoring::Repetition& r);

}  // namespace stephub::ingest

#endif  // STEPHUB_HUB_INGEST_REPETITION_PROTO_H_
