// Validation of what stations send: every rejection names what was wrong.
#ifndef STEPHUB_HUB_INGEST_VALIDATE_H_
#define STEPHUB_HUB_INGEST_VALIDATE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/samples.h"
#include "stephub/v1/station_link.pb.h"

namespace stephub::ingest {

// Bounds that keep one station from costing the hub unbounded work.
struct IngestLimits {
  int max_samples_per_sensor_per_batch = 5000;  // 5 s at 1 kHz
  int max_sensors = 16;
  double max_rate_hz = 4000;
  // Plausible physical range; beyond it a value is a fault, not a reading.
  double max_abs_accel_mps2 = 2000;
  double max_abs_gyro_radps = 200;
  double max_abs_force_n = 20000;
  double max_abs_cop_mm = 5000;
};

// The bytes of one message from a station, parsed; INVALID_ARGUMENT if they
// are no StationMessage (proto3 strings must also be valid UTF-8).
absl::Status ParseStationMessage(absl::string_view bytes,
                                 v1::StationMessage* message);

// Rules for identifiers on the wire: lower-case letters, digits, '-', '_',
// '.', 1 to 64 characters.
absl::Status ValidateStationId(const std::string& station_id);

absl::Status ValidateHello(const v1::StationHello& hello,
                           const IngestLimits& limits);

// A station's health report: every sensor it names was in its hello.
absl::Status ValidateHealth(const v1::StationHealth& health,
                            const v1::StationHello& hello);

// A station's clock estimate: non-negative, plausible uncertainty.
absl::Status ValidateClockOffset(const v1::ClockOffset& clock);

// What a stream remembers between batches to validate the next one.
class BatchValidator {
 public:
  BatchValidator(const v1::StationHello& hello, uint64_t durable_seq,
                 IngestLimits limits);

  // Checks the batch against the hello and the stream so far; on success
  // the batch becomes part of the stream (seq and time advance).
  absl::Status Accept(const v1::SampleBatch& batch);
  uint64_t last_seq() const { return last_seq_; }

  // A sensor whose first sample in a batch does not come after its last in
  // the previous one. The batch is accepted all the same: its clock
  // restarted, or an earlier sample was a glitch far ahead, and refusing
  // every batch after it would lose the set. Scoring drops what overlaps
  // and notes a restart on the set; the hub records the step as an event.
  struct ClockStep {
    uint32_t sensor_id;
    int64_t from_us;  // the last sample before
    int64_t to_us;    // the first after
  };
  // Those of the batch accepted last.
  const std::vector<ClockStep>& clock_steps() const { return clock_steps_; }

 private:
  absl::Status CheckTime(uint32_t sensor_id,
                         const google::protobuf::RepeatedField<int64_t>& t_us);

  std::map<uint32_t, v1::SensorInfo> sensors_;
  std::map<uint32_t, int64_t> last_t_us_;
  uint64_t last_seq_;
  std::vector<ClockStep> clock_steps_;
  IngestLimits limits_;
};

// The samples of one IMU in a batch, as the scorer's plain structs.
std::vector<ImuSample> ImuSamplesOf(const v1::SampleBatch& batch,
                                    uint32_t sensor_id);

// The samples of one force plate in a batch, as the scorer's plain structs.
std::vector<ForceSample> ForceSamplesOf(const v1::SampleBatch& batch,
                                        uint32_t sensor_id);

}  // namespace stephub::ingest

#endif  // STEPHUB_HUB_INGEST_VALIDATE_H_
