// libFuzzer target: a station's stream as the hub handles it, without the
// network. The input is a sequence of length-delimited StationMessages (as
// gRPC frames them, less the HTTP/2): each is checked as the StationLink
// service checks it, and every batch it accepts is scored as the bays
// score a running set. Finds what a hostile station could do to the
// validation and the numerics behind it.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "hub/ingest/batch_scoring.h"
#include "hub/ingest/validate.h"
#include "hub/scoring/scoring.h"
#include "stephub/v1/station_link.pb.h"

namespace {

using stephub::ingest::BatchValidator;

// The stream as one connection of the service holds it.
struct Stream {
  std::optional<stephub::v1::StationHello> hello;
  std::optional<BatchValidator> validator;
  std::optional<stephub::scoring::SetScorer> scorer;
};

// Returns false where the service would end the stream.
bool Handle(const stephub::v1::StationMessage& message, Stream& stream) {
  using stephub::v1::StationMessage;
  switch (message.message_case()) {
    case StationMessage::kHello: {
      if (stream.hello) return false;
      const stephub::ingest::IngestLimits limits;
      if (!stephub::ingest::ValidateHello(message.hello(), limits).ok()) {
        return false;
      }
      stream.hello = message.hello();
      stream.validator.emplace(message.hello(), /*durable_seq=*/0, limits);
      stream.scorer.emplace(stephub::StanceSide::kLeft,
                            stephub::ingest::StationSensorsOf(*stream.hello));
      return true;
    }
    case StationMessage::kBatch:
      if (!stream.hello || !stream.validator->Accept(message.batch()).ok()) {
        return false;
      }
      stephub::ingest::ScoreBatchSamples(*stream.scorer, *stream.hello,
                                         message.batch(),
                                         std::numeric_limits<int64_t>::min(),
                                         std::numeric_limits<int64_t>::max());
      return true;
    case StationMessage::kHealth:
      return stream.hello &&
             stephub::ingest::ValidateHealth(message.health(), *stream.hello)
                 .ok();
    case StationMessage::kClockOffset:
      return stream.hello &&
             stephub::ingest::ValidateClockOffset(message.clock_offset()).ok();
    case StationMessage::kClockPing:
      return stream.hello.has_value();
    default:
      return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Invalid UTF-8 is refused as it should be; protobuf's log line for each
  // would drown libFuzzer's own output.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  google::protobuf::io::CodedInputStream in(data, static_cast<int>(size));
  Stream stream;
  // The hub's receive limit (HubOptions::max_receive_message_bytes) bounds
  // a message; libFuzzer's -max_len bounds the whole input.
  while (!in.ExpectAtEnd()) {
    uint32_t length = 0;
    std::string bytes;
    if (!in.ReadVarint32(&length) ||
        !in.ReadString(&bytes, static_cast<int>(length))) {
      break;
    }
    stephub::v1::StationMessage message;
    const bool parsed =
        stephub::ingest::ParseStationMessage(bytes, &message).ok();
    if (!parsed || !Handle(message, stream)) break;
  }
  if (stream.scorer) stream.scorer->FinishSet();
  return 0;
}
