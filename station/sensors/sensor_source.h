// The one interface every station sensor driver implements (simulated
// patient, replayed recording, IIO IMU, serial force plate), and the station
// clock that all of them timestamp on.
#ifndef STEPHUB_STATION_SENSORS_SENSOR_SOURCE_H_
#define STEPHUB_STATION_SENSORS_SENSOR_SOURCE_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "common/samples.h"
#include "stephub/v1/station_link.pb.h"

namespace stephub::station {

// The station clock: microseconds of CLOCK_MONOTONIC. Every driver stamps its
// samples on it, so that one station's sensors share one timeline.
int64_t MonotonicMicros();

class SensorSource {
 public:
  virtual ~SensorSource() = default;
  // What the station announces in its hello (ids, kinds, placements, rates,
  // driver and device).
  virtual std::vector<v1::SensorInfo> Sensors() const = 0;
  // Opens devices and starts reading (asynchronously, on the io_context the
  // driver was built with). A device that is missing is not an error here:
  // it shows in Health() and the driver keeps trying to reopen it.
  virtual absl::Status Start() { return absl::OkStatus(); }
  // Appends every sample with a timestamp up to now_us that has not been
  // handed out yet. An error stops the station (programming or recording
  // errors only; device trouble goes to Health()).
  virtual absl::Status Poll(int64_t now_us, v1::SampleBatch* batch) = 0;
  // The therapist started a set on this bay (the hub says so) at
  // set_start_us, with the patient standing on `stance_side`. Simulated and
  // replayed patients start moving; hardware ignores it. set_start_us lies
  // before the latest Poll when the station restarted mid-set: the patient
  // kept moving meanwhile, so a simulated or replayed one resumes where it
  // would be by now instead of starting over.
  virtual void OnSetStarted(int64_t /*set_start_us*/,
                            StanceSide /*stance_side*/) {}
  // True once the source has played a whole set and has nothing more to
  // show (the simulated patient finished, the recording ended). Hardware
  // never finishes.
  virtual bool SetPlayed() const { return false; }
  // Whether this source's sets begin with the prompted calibration movement
  // (StationHello.calibration_movement): a simulated patient makes it, a
  // recording says so in its meta.json; hardware has no say (nullopt).
  virtual std::optional<bool> CalibrationMovement() const {
    return std::nullopt;
  }
  // Each sensor's condition at now_us.
  virtual std::vector<v1::SensorHealth> Health(int64_t now_us) const = 0;
  // Stops reading and closes devices; Poll may still drain decoded samples.
  virtual void Stop() {}
};

}  // namespace stephub::station

#endif  // STEPHUB_STATION_SENSORS_SENSOR_SOURCE_H_
