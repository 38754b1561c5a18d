// Simulated and replayed sensor sources: a whole station's sensors from the
// biomechanical simulator or from a recording folder.
#ifndef STEPHUB_STATION_SENSORS_SENSORS_H_
#define STEPHUB_STATION_SENSORS_SENSORS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/simulator.h"
#include "station/sensors/sensor_source.h"
#include "stephub/v1/station_link.pb.h"

namespace stephub::station {

// Appends samples [begin, end) of one sensor to `batch` as its wire
// message, times shifted by `offset_us`; nothing when the range is empty.
// How simulated and replayed sources batch, and tests that batch alike.
void AppendImuSamples(uint32_t sensor_id, const std::vector<ImuSample>& samples,
                      size_t begin, size_t end, int64_t offset_us,
                      v1::SampleBatch* batch);
void AppendForceSamples(uint32_t sensor_id,
                        const std::vector<ForceSample>& samples, size_t begin,
                        size_t end, int64_t offset_us, v1::SampleBatch* batch);

// A simulated patient with the given profile.
std::unique_ptr<SensorSource> MakeSimulatedSource(const PatientProfile& profile,
                                                  uint64_t seed,
                                                  int64_t start_us);

// "sim" or "sim:<profile>" (level, moderate, trendelenburg), or
// "replay:<recording dir>". start_us is the station clock's current time.
absl::StatusOr<std::unique_ptr<SensorSource>> MakeSensorSource(
    const std::string& spec, uint64_t seed, int64_t start_us);

}  // namespace stephub::station

#endif  // STEPHUB_STATION_SENSORS_SENSORS_H_
