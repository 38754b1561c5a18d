// Builds a station's sensors from its configuration: one simulated patient,
// one replayed recording, or any number of hardware drivers combined into
// one source.
#ifndef STEPHUB_STATION_SENSORS_STATION_SOURCES_H_
#define STEPHUB_STATION_SENSORS_STATION_SOURCES_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "station/sensors/sensor_source.h"
#include "stephub/v1/station_config.pb.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace stephub::station {

// Several sources as one: Poll gathers from each, Health lists all.
std::unique_ptr<SensorSource> CombineSources(
    std::vector<std::unique_ptr<SensorSource>> parts);

// The sources of a validated config (see station/config.h). Sensor ids of 0
// are assigned (force plate 1, IMUs from 10) in the config's order.
absl::StatusOr<std::unique_ptr<SensorSource>> MakeStationSources(
    const v1::StationConfig& config, boost::asio::io_context& io);

}  // namespace stephub::station

#endif  // STEPHUB_STATION_SENSORS_STATION_SOURCES_H_
