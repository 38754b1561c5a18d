// A received sample batch as the store keeps it (store.h's BatchRecordOf):
// one place decides what a batch's span and sample count are.
#include <algorithm>
#include <string>
#include <utility>

#include "hub/store/store.h"

namespace stephub::store {

BatchRecord BatchRecordOf(const v1::SampleBatch& batch, std::string station_id,
                          std::string boot_id, absl::Time received_at) {
  BatchRecord record;
  record.station_id = std::move(station_id);
  record.boot_id = std::move(boot_id);
  record.seq = batch.seq();
  record.received_at = received_at;
  bool any = false;
  auto span = [&](const google::protobuf::RepeatedField<int64_t>& t) {
    if (t.empty()) return;
    record.first_t_us = any ? std::min(record.first_t_us, t.Get(0)) : t.Get(0);
    record.last_t_us = any ? std::max(record.last_t_us, t.Get(t.size() - 1))
                           : t.Get(t.size() - 1);
    record.sample_count += static_cast<uint32_t>(t.size());
    any = true;
  };
  for (const auto& imu : batch.imu()) span(imu.t_us());
  for (const auto& force : batch.force()) span(force.t_us());
  batch.SerializeToString(&record.payload);
  return record;
}

}  // namespace stephub::store
