// The clinic floor as the hub sees it right now: one bay per station, with
// its connection, its running set and that set's online scorer.
#ifndef STEPHUB_HUB_INGEST_BAYS_H_
#define STEPHUB_HUB_INGEST_BAYS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "hub/live/live_bus.h"
#include "hub/scoring/scoring.h"
#include "hub/store/store.h"
#include "stephub/v1/clinic.pb.h"
#include "stephub/v1/dashboard.pb.h"
#include "stephub/v1/station_link.pb.h"

namespace stephub::ingest {

// A station's open stream, as the bays talk to it. Implementations must not
// block and must not call back into Bays.
class StationConnection {
 public:
  virtual ~StationConnection() = default;
  virtual void SendFeedback(const v1::StationFeedback& feedback) = 0;
  // A newer stream of the same station took over: end this one.
  virtual void Evict() = 0;
};

class Bays {
 public:
  // `clock` is the hub's time, which a station's clock estimate relates to
  // the station's (tests replace it); `zone` is the clinic's, whose days
  // make a patient's sessions.
  Bays(store::ClinicStore& store, live::LiveBus& bus,
       scoring::ScoringConfig config = {},
       std::function<absl::Time()> clock = &absl::Now,
       absl::TimeZone zone = absl::UTCTimeZone());
  ~Bays();

  // Loads known stations and running sets (after a hub restart).
  absl::Status Load();

  // OK if `station_id` has a bay, or fewer than `max_stations` stations
  // have one; RESOURCE_EXHAUSTED otherwise.
  absl::Status MayConnect(const std::string& station_id,
                          size_t max_stations) const;
  // A station said hello on a new stream; returns a token for Disconnect.
  uint64_t Connect(const v1::StationHello& hello,
                   std::shared_ptr<StationConnection> connection);
  void Disconnect(const std::string& station_id, uint64_t token);

  // A validated batch that is queued for storage: score it.
  void ScoreBatch(const std::string& station_id, const std::string& boot_id,
                  const v1::SampleBatch& batch);
  // The station's sensor and spool condition; a change of a sensor's state
  // is published and recorded as an event.
  void UpdateHealth(const std::string& station_id,
                    const v1::StationHealth& health);
  // The station's latest estimate of its clock against the hub's.
  void UpdateClock(const std::string& station_id, const v1::ClockOffset& clock);
  // Bookkeeping for the station list.
  void BatchQueued(const std::string& station_id);
  void BatchCommitted(const std::string& station_id, uint64_t seq);

  // A set takes the station's samples taken from its start to its end (on
  // the station's clock, by its clock estimate), whenever they arrive: a set
  // ended while its station is offline or behind is scored on as the
  // backlog arrives and finished once the data passes its end.
  absl::StatusOr<v1::ExerciseSet> StartSet(const v1::StartSetRequest& request);
  absl::StatusOr<v1::ExerciseSet> EndSet(const v1::EndSetRequest& request);

  // Scores an ended set again from its stored batches, exactly as live
  // scoring did, with this hub's scoring settings; the results become the
  // set's current ones and older versions are kept.
  absl::StatusOr<v1::RescoredSet> Rescore(int64_t set_id);
  // The version new sets are scored with (scoring::ScoringVersionOf).
  std::string scoring_version() const;

  std::vector<v1::StationStatus> Stations() const;
  v1::ClinicSnapshot Snapshot() const;

 private:
  struct Bay;
  struct SetScoring;
  std::shared_ptr<Bay> Find(const std::string& station_id) const;
  std::shared_ptr<Bay> FindOrAdd(const std::string& station_id);
  std::vector<std::shared_ptr<Bay>> AllBays() const;
  // The caller holds bay.mu.
  static v1::StationStatus StatusLocked(const Bay& bay);
  void Publish(v1::ClinicEvent event);
  void AttachScorer(Bay& bay, const v1::ExerciseSet& set);
  // A fresh scorer for the set, by the station's sensors in `hello`.
  SetScoring NewScoring(const v1::ExerciseSet& set,
                        const v1::StationHello& hello) const;
  // Stores repetitions the set's scorer counted, keeps them with the set
  // and adds their events.
  void KeepLocked(SetScoring& scoring, std::vector<v1::Repetition> reps,
                  std::vector<v1::ClinicEvent>* events);
  // Feeds the part of a batch taken within the set's bounds to its scorer;
  // the caller holds bay.mu.
  static std::vector<v1::Repetition> ScoreLocked(const Bay& bay,
                                                 SetScoring& scoring,
                                                 const v1::SampleBatch& batch);
  // Scores what is left of an ended set; returns the repetitions counted
  // and whether a partial one was left out. The caller holds bay.mu.
  static std::vector<v1::Repetition> FinishLocked(const Bay& bay,
                                                  SetScoring& scoring,
                                                  bool* partial);
  // Finishes the set closing on the bay: stores, records and returns the
  // events to publish. The caller holds bay.mu.
  std::vector<v1::ClinicEvent> FinishClosingLocked(Bay& bay);
  static v1::Repetition RepetitionToWire(const Bay& bay,
                                         const v1::ExerciseSet& set,
                                         const scoring::Repetition& r);
  // Now on the station's clock, by its latest estimate, if any.
  std::optional<int64_t> StationNowLocked(const Bay& bay) const;
  // Re-scores a set's stored batches after a hub restart.
  absl::Status ReplaySetLocked(Bay& bay, SetScoring& scoring,
                               const std::vector<v1::Repetition>& stored);
  void SendFeedbackLocked(Bay& bay);
  // The running set's new trace points, as an event once there are about
  // 100 ms of them. The caller holds bay.mu.
  static std::optional<v1::ClinicEvent> TraceLocked(Bay& bay);
  template <typename It>
  static v1::PelvisTrace TraceOf(const Bay& bay, It begin, It end);

  store::ClinicStore& store_;
  live::LiveBus& bus_;
  const scoring::ScoringConfig config_;
  const std::function<absl::Time()> clock_;
  const absl::TimeZone zone_;
  mutable std::mutex mu_;  // guards bays_ (the map, not each bay)
  std::map<std::string, std::shared_ptr<Bay>> bays_;
  // Handed out under different bays' mutexes.
  std::atomic<uint64_t> next_token_{1};
};

}  // namespace stephub::ingest

#endif  // STEPHUB_HUB_INGEST_BAYS_H_
