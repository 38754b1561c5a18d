// The station's sensor sources behind one interface: a simulated patient,
// a replayed recording, and (issue 3) real hardware drivers.
#ifndef STEPHUB_STATION_SENSORS_H_
#define STEPHUB_STATION_SENSORS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/simulator.h"
#include "stephub/v1/station_link.pb.h"

namespace stephub::station {

class SensorSource {
 public:
  virtual ~SensorSource() = default;
  // What the station announces in its hello.
  virtual std::vector<v1::SensorInfo> Sensors() const = 0;
  // Appends every sample with a timestamp up to now_us (station clock).
  virtual absl::Status Poll(int64_t now_us, v1::SampleBatch* batch) = 0;
  // The therapist started a set on this bay (the hub says so), with the
  // patient standing on `stance_side`.
  virtual void OnSetStarted(int64_t now_us, StanceSide stance_side) = 0;
  // True once the source has played a whole set and has nothing more to
  // show (the simulated patient finished, the recording ended).
  virtual bool SetPlayed() const = 0;
};

// A simulated patient with the given profile.
std::unique_ptr<SensorSource> MakeSimulatedSource(const PatientProfile& profile,
                                                  uint64_t seed,
                                                  int64_t start_us);

// "sim" or "sim:<profile>" (level, moderate, trendelenburg), or
// "replay:<recording dir>". start_us is the station clock's current time.
absl::StatusOr<std::unique_ptr<SensorSource>> MakeSensorSource(
    const std::string& spec, uint64_t seed, int64_t start_us);

}  // namespace stephub::station

#endif  // STEPHUB_STATION_SENSORS_H_
