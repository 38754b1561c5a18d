// The bays: live per-station state and online scoring; see bays.h.
#include "hub/ingest/bays.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <deque>
#include <iostream>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/text.h"
#include "hub/ingest/batch_scoring.h"
#include "hub/ingest/repetition_proto.h"
#include "hub/ingest/validate.h"
#include "hub/scoring/scoring_config.h"

namespace stephub::ingest {

using google::protobuf::util::TimeUtil;

// One set's online scoring: the set (with its bounds on the station's
// clock), its scorer and the repetitions it counted.
struct Bays::SetScoring {
  v1::ExerciseSet set;
  std::unique_ptr<scoring::SetScorer> scorer;
  std::vector<v1::Repetition> repetitions;
};

struct Bays::Bay {
  // Serialises this station's StartSet and EndSet (check, store, attach).
  // Each waits for a store commit, so one lock for all bays made every
  // therapist's call queue behind every other bay's commit.
  std::mutex control_mu;
  std::mutex mu;
  std::string station_id;
  v1::StationHello hello;
  bool online = false;
  absl::Time last_seen = absl::InfinitePast();
  uint64_t token = 0;
  std::shared_ptr<StationConnection> connection;
  uint64_t durable_seq = 0;
  uint64_t backlog = 0;
  std::vector<v1::SensorHealth> health;
  uint64_t spool_dropped_samples = 0;
  // The latest clock estimate, kept across reconnections: a set started
  // or ended while the station is offline is placed on its clock by it.
  bool has_clock = false;
  bool clock_this_connection = false;
  v1::ClockOffset clock;

  std::optional<SetScoring> running;
  // Ended by the therapist before the station's data reached its end.
  std::optional<SetScoring> closing;
  // The set's opening step the station's cue last said.
  scoring::SetStep cued_step = scoring::SetStep::kStandStill;
  // The newest sample time scored of scored_boot_id (station clock).
  int64_t newest_t_us = std::numeric_limits<int64_t>::min();
  // The newest batch scored: a batch resent after a reconnect is not scored
  // twice.
  std::string scored_boot_id;
  uint64_t scored_seq = 0;
  // The running set's live trace: points not yet published, and the last
  // 5 s for snapshots.
  std::vector<scoring::PelvicTracePoint> trace_unsent;
  std::deque<scoring::PelvicTracePoint> trace_recent;
};

namespace {

google::protobuf::Timestamp Now() {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(absl::Now()));
}

StanceSide ToStanceSide(v1::StanceSide side) {
  return side == v1::STANCE_SIDE_RIGHT ? StanceSide::kRight : StanceSide::kLeft;
}

// The bay screen's words for where the patient is in the set.
std::string CueFor(scoring::SetStep step, bool calibration_movement) {
  switch (step) {
    case scoring::SetStep::kStandStill:
      return calibration_movement
                 ? "Stand still on the step on your stance leg"
                 : "Stand still on the step on your stance leg, then begin";
    case scoring::SetStep::kCalibrationMovement:
      return "Put your free foot down beside it and bend both knees once, "
             "slowly; then lift it and begin";
    case scoring::SetStep::kStepDowns:
      return "Step down slowly and keep your hip bones level";
  }
  return "";
}

absl::Time TimeOf(const google::protobuf::Timestamp& t) {
  return absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(t));
}

// A stored batch back as the station sent it.
absl::StatusOr<v1::SampleBatch> ParseStored(const store::BatchRecord& record) {
  v1::SampleBatch batch;
  if (!batch.ParseFromString(record.payload)) {
    return absl::DataLossError(
        absl::StrCat("stored batch ", record.seq, " of ", record.station_id,
                     " (boot ", record.boot_id, ") does not parse"));
  }
  return batch;
}

void LogStoreFailure(const char* what, const absl::Status& s) {
  if (!s.ok())
    Log(LogLevel::kError, "not_stored").With("what", what).With("error", s);
}

// Times a therapist's StartSet or EndSet phase by phase and logs the call
// if it kept the therapist waiting: under load the wait could be the bay's
// lock, the store's reads or its writer, and only the phases tell which.
class SetCallPhases {
 public:
  explicit SetCallPhases(const char* call)
      : call_(call), start_(absl::Now()), last_(start_) {}
  ~SetCallPhases() {
    const absl::Duration total = absl::Now() - start_;
    if (total < kSlow) return;
    Log line(LogLevel::kWarning, "slow_set_call");
    line.With("call", call_).With("station", station_);
    line.With("total_ms", absl::ToInt64Milliseconds(total));
    for (const auto& [phase, took] : phases_) {
      line.With(absl::StrCat(phase, "_ms"), absl::ToInt64Milliseconds(took));
    }
  }
  SetCallPhases(const SetCallPhases&) = delete;
  SetCallPhases& operator=(const SetCallPhases&) = delete;

  void set_station(absl::string_view station) {
    station_ = std::string(station);
  }
  // The time since the previous phase ended is `phase`'s.
  void Done(const char* phase) {
    const absl::Time now = absl::Now();
    phases_.emplace_back(phase, now - last_);
    last_ = now;
  }

 private:
  static constexpr absl::Duration kSlow = absl::Milliseconds(500);
  const char* const call_;
  std::string station_;
  const absl::Time start_;
  absl::Time last_;
  std::vector<std::pair<const char*, absl::Duration>> phases_;
};

}  // namespace

Bays::Bays(store::ClinicStore& store, live::LiveBus& bus,
           scoring::ScoringConfig config, std::function<absl::Time()> clock,
           absl::TimeZone zone)
    : store_(store),
      bus_(bus),
      config_(config),
      clock_(std::move(clock)),
      zone_(zone) {}

Bays::~Bays() = default;

absl::Status Bays::Load() {
  auto stations = store_.ListStations();
  if (!stations.ok()) return stations.status();
  for (const store::StationRecord& r : *stations) {
    auto bay = FindOrAdd(r.station_id);
    std::lock_guard<std::mutex> lock(bay->mu);
    bay->hello = r.hello;
    bay->last_seen = r.last_seen;
  }
  auto sets = store_.ActiveSets();
  if (!sets.ok()) return sets.status();
  for (const v1::ExerciseSet& set : *sets) {
    auto bay = FindOrAdd(set.station_id());
    std::lock_guard<std::mutex> lock(bay->mu);
    AttachScorer(*bay, set);
    auto reps = store_.RepetitionsOfSet(set.set_id());
    if (!reps.ok()) return reps.status();
    if (auto s = ReplaySetLocked(*bay, *bay->running, *reps); !s.ok()) {
      return s;
    }
  }
  // Sets ended while their station was behind: scored on from their stored
  // batches, and finished if the data has passed their end meanwhile.
  auto awaiting = store_.SetsAwaitingData();
  if (!awaiting.ok()) return awaiting.status();
  for (const v1::ExerciseSet& set : *awaiting) {
    auto bay = FindOrAdd(set.station_id());
    std::lock_guard<std::mutex> lock(bay->mu);
    if (bay->closing) FinishClosingLocked(*bay);
    bay->closing = NewScoring(set, bay->hello);
    auto reps = store_.RepetitionsOfSet(set.set_id());
    if (!reps.ok()) return reps.status();
    if (auto s = ReplaySetLocked(*bay, *bay->closing, *reps); !s.ok()) {
      return s;
    }
    if (bay->newest_t_us > set.station_end_us()) FinishClosingLocked(*bay);
  }
  return absl::OkStatus();
}

absl::Status Bays::ReplaySetLocked(Bay& bay, SetScoring& scoring,
                                   const std::vector<v1::Repetition>& stored) {
  // The hub stopped mid-set (perhaps killed): its scorer's state is gone,
  // but every batch it acknowledged is stored. Scoring them again restores
  // the set exactly where it was; repetitions already stored are not added
  // twice, and ones scored but not yet committed when the hub stopped are
  // recovered.
  scoring.repetitions = stored;
  int recovered = 0;
  absl::Status bad;
  auto s = store_.VisitBatches(
      bay.station_id, TimeOf(scoring.set.started_at()),
      [&](const store::BatchRecord& record) {
        auto batch = ParseStored(record);
        if (!batch.ok()) {
          bad = batch.status();
          return false;
        }
        if (record.boot_id != bay.scored_boot_id) {
          bay.scored_boot_id = record.boot_id;
          bay.scored_seq = record.seq;
          bay.newest_t_us = std::numeric_limits<int64_t>::min();
        } else {
          bay.scored_seq = std::max(bay.scored_seq, record.seq);
        }
        bay.newest_t_us = std::max(bay.newest_t_us, record.last_t_us);
        for (v1::Repetition& rep : ScoreLocked(bay, scoring, *batch)) {
          if (rep.number() <= stored.size()) continue;
          store_.AddRepetition(rep, [](const absl::Status& s) {
            LogStoreFailure("repetition", s);
          });
          scoring.repetitions.push_back(std::move(rep));
          ++recovered;
        }
        return true;
      });
  if (!s.ok()) return s;
  if (!bad.ok()) return bad;
  if (recovered > 0) {
    store_.AddEvent("set_rescored_after_restart", bay.station_id,
                    absl::StrCat("set ", scoring.set.set_id(), ": ", recovered,
                                 " repetitions recovered from stored samples"));
  }
  return absl::OkStatus();
}

std::shared_ptr<Bays::Bay> Bays::Find(const std::string& station_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = bays_.find(station_id);
  return it == bays_.end() ? nullptr : it->second;
}

std::shared_ptr<Bays::Bay> Bays::FindOrAdd(const std::string& station_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& bay = bays_[station_id];
  if (!bay) {
    bay = std::make_shared<Bay>();
    bay->station_id = station_id;
  }
  return bay;
}

void Bays::Publish(v1::ClinicEvent event) {
  *event.mutable_time() = Now();
  bus_.Publish(std::move(event));
}

v1::StationStatus Bays::StatusLocked(const Bay& bay) {
  v1::StationStatus s;
  s.set_station_id(bay.station_id);
  s.set_online(bay.online);
  if (bay.last_seen != absl::InfinitePast()) {
    *s.mutable_last_seen() =
        TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(bay.last_seen));
  }
  *s.mutable_sensors() = bay.hello.sensors();
  s.set_durable_seq(bay.durable_seq);
  s.set_backlog_batches(bay.backlog);
  s.set_active_set_id(bay.running ? bay.running->set.set_id() : 0);
  for (const auto& h : bay.health) *s.add_sensor_health() = h;
  if (bay.has_clock) *s.mutable_clock() = bay.clock;
  s.set_spool_dropped_samples(bay.spool_dropped_samples);
  return s;
}

std::vector<std::shared_ptr<Bays::Bay>> Bays::AllBays() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<Bay>> bays;
  for (const auto& [id, bay] : bays_) bays.push_back(bay);
  return bays;
}

absl::Status Bays::MayConnect(const std::string& station_id,
                              size_t max_stations) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (bays_.size() < max_stations || bays_.count(station_id) > 0) {
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "the hub already keeps ", bays_.size(),
      " stations, its limit; station \"", station_id, "\" is not one of them"));
}

uint64_t Bays::Connect(const v1::StationHello& hello,
                       std::shared_ptr<StationConnection> connection) {
  auto bay = FindOrAdd(hello.station_id());
  std::shared_ptr<StationConnection> evicted;
  v1::ClinicEvent event;
  uint64_t token;
  {
    std::lock_guard<std::mutex> lock(bay->mu);
    evicted = std::move(bay->connection);
    token = next_token_++;
    bay->token = token;
    bay->connection = std::move(connection);
    bay->hello = hello;
    bay->health.clear();
    bay->clock_this_connection = false;
    bay->spool_dropped_samples = hello.spool_dropped_samples();
    bay->online = true;
    bay->last_seen = absl::Now();
    bay->backlog = 0;
    *event.mutable_station() = StatusLocked(*bay);
    SendFeedbackLocked(*bay);
  }
  if (evicted) evicted->Evict();
  store_.SaveStation(
      {hello.station_id(), hello, absl::Now()},
      [](const absl::Status& s) { LogStoreFailure("station", s); });
  Log(LogLevel::kInfo, "station_connected")
      .With("station", hello.station_id())
      .With("boot_id", hello.boot_id())
      .With("sensors", hello.sensors_size())
      .With("spool_dropped_samples", hello.spool_dropped_samples());
  store_.AddEvent("station_connected", hello.station_id(),
                  absl::StrCat("boot ", hello.boot_id(), ", ",
                               hello.sensors_size(), " sensors"));
  if (hello.spool_dropped_samples() > 0) {
    store_.AddEvent("station_spool_loss", hello.station_id(),
                    absl::StrCat("the station's spool was full and refused ",
                                 hello.spool_dropped_samples(), " samples (",
                                 hello.spool_dropped_batches(),
                                 " batches) of boot ", hello.boot_id()));
  }
  Publish(std::move(event));
  return token;
}

void Bays::UpdateHealth(const std::string& station_id,
                        const v1::StationHealth& health) {
  auto bay = Find(station_id);
  if (!bay) return;
  std::vector<std::string> changes;
  v1::ClinicEvent event;
  {
    std::lock_guard<std::mutex> lock(bay->mu);
    for (const auto& now : health.sensors()) {
      v1::SensorState before = v1::SENSOR_STATE_OK;
      for (const auto& was : bay->health) {
        if (was.sensor_id() == now.sensor_id()) before = was.state();
      }
      if (before != now.state()) {
        changes.push_back(absl::StrCat(
            "sensor ", now.sensor_id(), ": ", v1::SensorState_Name(before),
            " -> ", v1::SensorState_Name(now.state()),
            now.detail().empty() ? "" : absl::StrCat(" (", now.detail(), ")")));
      }
    }
    bay->health.assign(health.sensors().begin(), health.sensors().end());
    bay->spool_dropped_samples =
        std::max(bay->spool_dropped_samples, health.spool_dropped_samples());
    *event.mutable_station() = StatusLocked(*bay);
  }
  if (changes.empty()) return;
  for (const auto& change : changes) {
    Log(LogLevel::kWarning, "sensor_state")
        .With("station", station_id)
        .With("change", change);
    store_.AddEvent("sensor_state", station_id, change);
  }
  Publish(std::move(event));
}

void Bays::UpdateClock(const std::string& station_id,
                       const v1::ClockOffset& clock) {
  auto bay = Find(station_id);
  if (!bay) return;
  bool first;
  {
    std::lock_guard<std::mutex> lock(bay->mu);
    first = !bay->clock_this_connection;
    bay->clock_this_connection = true;
    bay->has_clock = true;
    bay->clock = clock;
    *bay->clock.mutable_measured_at() = Now();
  }
  // The first estimate of each connection goes into the record, so that a
  // station's samples can be placed on the hub's timeline afterwards.
  if (first) {
    store_.AddEvent("station_clock", station_id,
                    absl::StrCat("offset_us=", clock.offset_us(),
                                 " uncertainty_us=", clock.uncertainty_us(),
                                 " round_trip_us=", clock.round_trip_us()));
  }
}

void Bays::Disconnect(const std::string& station_id, uint64_t token) {
  auto bay = Find(station_id);
  if (!bay) return;
  v1::ClinicEvent event;
  {
    std::lock_guard<std::mutex> lock(bay->mu);
    if (bay->token != token) return;  // a newer stream already took over
    bay->connection.reset();
    bay->online = false;
    bay->last_seen = absl::Now();
    *event.mutable_station() = StatusLocked(*bay);
  }
  Log(LogLevel::kInfo, "station_disconnected").With("station", station_id);
  store_.AddEvent("station_disconnected", station_id, "");
  Publish(std::move(event));
}

void Bays::BatchQueued(const std::string& station_id) {
  if (auto bay = Find(station_id)) {
    std::lock_guard<std::mutex> lock(bay->mu);
    ++bay->backlog;
    bay->last_seen = absl::Now();
  }
}

void Bays::BatchCommitted(const std::string& station_id, uint64_t seq) {
  if (auto bay = Find(station_id)) {
    std::lock_guard<std::mutex> lock(bay->mu);
    if (bay->backlog > 0) --bay->backlog;
    bay->durable_seq = std::max(bay->durable_seq, seq);
  }
}

void Bays::AttachScorer(Bay& bay, const v1::ExerciseSet& set) {
  bay.running = NewScoring(set, bay.hello);
  bay.trace_unsent.clear();
  bay.trace_recent.clear();
}

Bays::SetScoring Bays::NewScoring(const v1::ExerciseSet& set,
                                  const v1::StationHello& hello) const {
  SetScoring scoring;
  scoring.set = set;
  scoring.scorer = std::make_unique<scoring::SetScorer>(
      ToStanceSide(set.stance_side()), StationSensorsOf(hello), config_);
  return scoring;
}

void Bays::KeepLocked(SetScoring& scoring, std::vector<v1::Repetition> reps,
                      std::vector<v1::ClinicEvent>* events) {
  for (v1::Repetition& rep : reps) {
    store_.AddRepetition(
        rep, [](const absl::Status& s) { LogStoreFailure("repetition", s); });
    scoring.repetitions.push_back(rep);
    v1::ClinicEvent event;
    *event.mutable_repetition() = std::move(rep);
    events->push_back(std::move(event));
  }
}

std::optional<int64_t> Bays::StationNowLocked(const Bay& bay) const {
  if (!bay.has_clock) return std::nullopt;
  return absl::ToUnixMicros(clock_()) - bay.clock.offset_us();
}

void Bays::SendFeedbackLocked(Bay& bay) {
  if (!bay.connection) return;
  v1::StationFeedback feedback;
  feedback.set_set_active(bay.running.has_value());
  if (bay.running) {
    const SetScoring& running = *bay.running;
    feedback.set_set_id(running.set.set_id());
    feedback.set_patient_display_name(running.set.patient_display_name());
    feedback.set_stance_side(running.set.stance_side());
    feedback.set_repetition_count(
        static_cast<uint32_t>(running.repetitions.size()));
    bay.cued_step = running.scorer->step();
    feedback.set_cue(CueFor(bay.cued_step, bay.hello.calibration_movement()));
    if (!running.repetitions.empty()) {
      *feedback.mutable_last_repetition() = running.repetitions.back();
    }
  }
  bay.connection->SendFeedback(feedback);
}

std::vector<v1::Repetition> Bays::ScoreLocked(const Bay& bay,
                                              SetScoring& scoring,
                                              const v1::SampleBatch& batch) {
  const v1::ExerciseSet& set = scoring.set;
  const int64_t from_us = set.has_station_start_us()
                              ? set.station_start_us()
                              : std::numeric_limits<int64_t>::min();
  const int64_t until_us = set.has_station_end_us()
                               ? set.station_end_us()
                               : std::numeric_limits<int64_t>::max();
  const std::vector<scoring::Repetition> scored =
      ScoreBatchSamples(*scoring.scorer, bay.hello, batch, from_us, until_us);
  std::vector<v1::Repetition> out;
  for (const scoring::Repetition& r : scored) {
    out.push_back(RepetitionToWire(bay, set, r));
  }
  return out;
}

std::vector<v1::Repetition> Bays::FinishLocked(const Bay& bay,
                                               SetScoring& scoring,
                                               bool* partial) {
  // Counted repetitions still waiting for a lagging sensor are kept; a
  // repetition cut off by the end of the set is not counted.
  std::vector<v1::Repetition> out;
  *partial = false;
  for (const scoring::Repetition& r : scoring.scorer->FinishSet()) {
    if (r.partial) {
      *partial = true;
      continue;
    }
    out.push_back(RepetitionToWire(bay, scoring.set, r));
  }
  return out;
}

std::vector<v1::ClinicEvent> Bays::FinishClosingLocked(Bay& bay) {
  SetScoring closing = std::move(*bay.closing);
  bay.closing.reset();
  bool partial = false;
  std::vector<v1::ClinicEvent> events;
  KeepLocked(closing, FinishLocked(bay, closing, &partial), &events);
  // Behind its last repetitions in the writer's queue: a hub stopped before
  // they are stored scores the set again on its next start.
  store_.SetScoredToItsEnd(closing.set.set_id(), [](const absl::Status& s) {
    LogStoreFailure("set scored to its end", s);
  });
  store_.AddEvent(
      "set_scored_to_its_end", bay.station_id,
      absl::StrCat("set ", closing.set.set_id(), ": ",
                   closing.repetitions.size(),
                   " repetitions, the station's data having reached the set's "
                   "end after it was ended",
                   partial ? "; the last repetition was partial and is not "
                             "counted"
                           : ""));
  return events;
}

v1::Repetition Bays::RepetitionToWire(const Bay& bay,
                                      const v1::ExerciseSet& set,
                                      const scoring::Repetition& r) {
  v1::Repetition rep = RepetitionToProto(r);
  rep.set_set_id(set.set_id());
  rep.set_station_id(bay.station_id);
  rep.set_patient_id(set.patient_id());
  // Sets from before versions were kept with them: the hub's current one.
  rep.set_scoring_version(set.scoring_version().empty()
                              ? scoring::kScoringVersion
                              : set.scoring_version());
  *rep.mutable_scored_at() = Now();
  return rep;
}

void Bays::ScoreBatch(const std::string& station_id, const std::string& boot_id,
                      const v1::SampleBatch& batch) {
  auto bay = Find(station_id);
  if (!bay) return;
  std::vector<v1::ClinicEvent> events;
  {
    std::lock_guard<std::mutex> lock(bay->mu);
    if (boot_id == bay->scored_boot_id && batch.seq() <= bay->scored_seq) {
      return;
    }
    if (boot_id != bay->scored_boot_id) {
      bay->newest_t_us = std::numeric_limits<int64_t>::min();
    }
    bay->scored_boot_id = boot_id;
    bay->scored_seq = batch.seq();
    auto newest = [&](const google::protobuf::RepeatedField<int64_t>& t) {
      if (!t.empty()) {
        bay->newest_t_us = std::max(bay->newest_t_us, t.Get(t.size() - 1));
      }
    };
    for (const auto& imu : batch.imu()) newest(imu.t_us());
    for (const auto& force : batch.force()) newest(force.t_us());
    auto keep = [&](SetScoring& scoring) {
      KeepLocked(scoring, ScoreLocked(*bay, scoring, batch), &events);
    };
    if (bay->closing) {
      keep(*bay->closing);
      if (bay->newest_t_us > bay->closing->set.station_end_us()) {
        for (auto& e : FinishClosingLocked(*bay)) events.push_back(e);
      }
    }
    const size_t closing_events = events.size();
    if (bay->running) {
      keep(*bay->running);
      if (events.size() > closing_events ||
          bay->running->scorer->step() != bay->cued_step) {
        SendFeedbackLocked(*bay);
      }
      if (auto trace = TraceLocked(*bay)) events.push_back(std::move(*trace));
    }
  }
  for (auto& e : events) Publish(std::move(e));
}

absl::StatusOr<v1::ExerciseSet> Bays::StartSet(
    const v1::StartSetRequest& request) {
  SetCallPhases phases("StartSet");
  phases.set_station(request.station_id());
  if (auto s = ValidateStationId(request.station_id()); !s.ok()) return s;
  if (request.stance_side() != v1::STANCE_SIDE_LEFT &&
      request.stance_side() != v1::STANCE_SIDE_RIGHT) {
    return absl::InvalidArgumentError(
        "stance_side must be STANCE_SIDE_LEFT or STANCE_SIDE_RIGHT");
  }
  // Both are printed on reports and shown on the bay's screen.
  if (auto s = CheckText(request.exercise(), "exercise", 0, 100); !s.ok()) {
    return s;
  }
  if (auto s = CheckText(request.load(), "load", 0, 100); !s.ok()) return s;
  if (request.level() > 3) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "level %d is not a programme level (1-3)", request.level()));
  }
  auto bay = Find(request.station_id());
  if (!bay) {
    return absl::NotFoundError(absl::StrCat(
        "no station \"", request.station_id(),
        "\": a station is known once it has connected to this hub"));
  }
  std::lock_guard<std::mutex> control(bay->control_mu);
  phases.Done("wait_bay");
  auto patient = store_.GetPatient(request.patient_id());
  if (!patient.ok()) return patient.status();
  if (request.therapist_id() != 0) {
    auto therapist = store_.GetTherapist(request.therapist_id());
    if (!therapist.ok()) return therapist.status();
  }
  phases.Done("read");
  v1::ExerciseSet set;
  v1::StationHello station;
  {
    std::lock_guard<std::mutex> lock(bay->mu);
    station = bay->hello;
    if (bay->running) {
      return absl::FailedPreconditionError(
          absl::StrFormat("station %s is already running set %d; end it first",
                          request.station_id(), bay->running->set.set_id()));
    }
    if (auto now = StationNowLocked(*bay)) set.set_station_start_us(*now);
  }
  set.set_scoring_version(scoring::ScoringVersionOf(config_));
  set.set_station_id(request.station_id());
  set.set_patient_id(request.patient_id());
  set.set_stance_side(request.stance_side());
  set.set_exercise(request.exercise().empty() ? "lateral_step_down"
                                              : request.exercise());
  set.set_load(request.load().empty() ? "bodyweight" : request.load());
  set.set_level(request.level() == 0 ? 2 : request.level());
  set.set_therapist_id(request.therapist_id());
  const absl::CivilDay day = absl::ToCivilDay(clock_(), zone_);
  auto created = store_.CreateSet(set, absl::FormatCivilTime(day), station);
  phases.Done("store");
  if (!created.ok()) return created.status();
  {
    std::lock_guard<std::mutex> lock(bay->mu);
    AttachScorer(*bay, *created);
    SendFeedbackLocked(*bay);
  }
  phases.Done("attach");
  store_.AddEvent("set_started", request.station_id(),
                  absl::StrCat("set ", created->set_id(), " patient ",
                               created->patient_id()));
  v1::ClinicEvent event;
  *event.mutable_set_started() = *created;
  Publish(std::move(event));
  phases.Done("publish");
  return created;
}

absl::StatusOr<v1::ExerciseSet> Bays::EndSet(const v1::EndSetRequest& request) {
  SetCallPhases phases("EndSet");
  auto set_not_ended = [&]() -> absl::StatusOr<v1::ExerciseSet> {
    auto set = store_.GetSet(request.set_id());
    if (set.ok() && set->state() == v1::SET_STATE_ENDED) {
      return absl::FailedPreconditionError(
          absl::StrFormat("set %d has already ended", request.set_id()));
    }
    return set;
  };
  std::string station_id = request.station_id();
  if (request.set_id() != 0) {
    auto set = set_not_ended();
    if (!set.ok()) return set.status();
    station_id = set->station_id();
  } else if (station_id.empty()) {
    return absl::InvalidArgumentError("give set_id or station_id");
  }
  phases.set_station(station_id);
  phases.Done("read");
  auto bay = Find(station_id);
  if (!bay) return absl::NotFoundError(absl::StrCat("no station ", station_id));
  std::lock_guard<std::mutex> control(bay->control_mu);
  phases.Done("wait_bay");
  // Again under the bay's lock: another EndSet of this set may have ended
  // it since the first look.
  if (request.set_id() != 0) {
    if (auto set = set_not_ended(); !set.ok()) return set.status();
  }
  phases.Done("reread");
  int64_t set_id;
  std::optional<int64_t> end_us;
  bool partial = false;
  bool closing = false;
  std::vector<v1::ClinicEvent> late;
  {
    std::lock_guard<std::mutex> lock(bay->mu);
    if (!bay->running) {
      return absl::FailedPreconditionError(
          absl::StrCat("station ", station_id, " has no running set"));
    }
    SetScoring& running = *bay->running;
    set_id = running.set.set_id();
    end_us = StationNowLocked(*bay);
    if (end_us) running.set.set_station_end_us(*end_us);
    // Data this far behind the set's end means the station is offline or
    // sending a backlog: the set is scored on as the rest arrives.
    constexpr int64_t kBehindUs = 1'000'000;
    if (end_us && bay->newest_t_us < *end_us - kBehindUs) {
      // One set closing at a time: an earlier one ends with what it has.
      if (bay->closing) late = FinishClosingLocked(*bay);
      bay->closing = std::move(running);
      closing = true;
    } else {
      KeepLocked(running, FinishLocked(*bay, running, &partial), &late);
    }
    bay->running.reset();
    bay->trace_unsent.clear();
    bay->trace_recent.clear();
    SendFeedbackLocked(*bay);
  }
  phases.Done("score");
  auto ended = store_.EndSet(set_id, clock_(), end_us, closing);
  phases.Done("store");
  if (!ended.ok()) return ended.status();
  store_.AddEvent(
      "set_ended", station_id,
      absl::StrCat("set ", set_id,
                   partial ? ": the last repetition was partial and is not "
                             "counted"
                           : "",
                   closing ? ": the station's data has not reached the end "
                             "yet; it is scored as it arrives"
                           : ""));
  for (auto& e : late) Publish(std::move(e));
  v1::ClinicEvent event;
  *event.mutable_set_ended() = *ended;
  Publish(std::move(event));
  phases.Done("publish");
  return ended;
}

std::string Bays::scoring_version() const {
  return scoring::ScoringVersionOf(config_);
}

absl::StatusOr<v1::RescoredSet> Bays::Rescore(int64_t set_id) {
  auto set = store_.GetSet(set_id);
  if (!set.ok()) return set.status();
  v1::RescoredSet result;
  result.set_set_id(set_id);
  if (auto bay = Find(set->station_id())) {
    std::lock_guard<std::mutex> lock(bay->mu);
    const bool running = bay->running && bay->running->set.set_id() == set_id;
    const bool closing = bay->closing && bay->closing->set.set_id() == set_id;
    if (running || closing) {
      result.set_skipped(
          running ? "still running: end it first"
                  : "ended, but its station's data has not reached its end");
      return result;
    }
  }
  auto old = store_.RepetitionsOfSet(set_id);
  if (!old.ok()) return old.status();
  result.set_old_scoring_version(
      !set->scoring_version().empty() ? set->scoring_version()
      : old->empty()                  ? ""
                                      : old->front().scoring_version());
  result.set_old_repetitions(static_cast<uint32_t>(old->size()));
  for (const v1::Repetition& r : *old) {
    result.set_old_clean_repetitions(result.old_clean_repetitions() +
                                     r.clean());
  }
  // The scorer is fed as live scoring fed it: the station's sensors as the
  // set started, the batches in the order they arrived, each cut to the
  // set's bounds.
  Bay context;
  context.station_id = set->station_id();
  auto kept = store_.StationOfSet(set_id);
  if (!kept.ok()) return kept.status();
  if (*kept) {
    context.hello = **kept;
  } else {
    // A set from before hellos were kept: the station's latest.
    auto stations = store_.ListStations();
    if (!stations.ok()) return stations.status();
    for (const store::StationRecord& r : *stations) {
      if (r.station_id == set->station_id()) context.hello = r.hello;
    }
  }
  if (context.hello.sensors().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "set ", set_id, ": the sensors of station ", set->station_id(),
        " are not known, so it cannot be "
        "re-scored"));
  }
  SetScoring rescoring = NewScoring(*set, context.hello);
  rescoring.set.set_scoring_version(scoring::ScoringVersionOf(config_));
  const absl::Time ended =
      set->has_ended_at() ? TimeOf(set->ended_at()) : absl::InfiniteFuture();
  std::vector<v1::Repetition> reps;
  absl::Status bad;
  auto visited = store_.VisitBatches(
      set->station_id(), TimeOf(set->started_at()),
      [&](const store::BatchRecord& record) {
        // Past the set's end: on the station's clock when known (a backlog
        // can arrive long after), else by arrival.
        if (set->has_station_end_us()
                ? record.first_t_us > set->station_end_us()
                : record.received_at > ended) {
          return false;
        }
        auto batch = ParseStored(record);
        if (!batch.ok()) {
          bad = batch.status();
          return false;
        }
        for (v1::Repetition& rep : ScoreLocked(context, rescoring, *batch)) {
          reps.push_back(std::move(rep));
        }
        return true;
      });
  if (!visited.ok()) return visited;
  if (!bad.ok()) return bad;
  bool partial = false;
  for (v1::Repetition& rep : FinishLocked(context, rescoring, &partial)) {
    reps.push_back(std::move(rep));
  }
  result.set_new_scoring_version(rescoring.set.scoring_version());
  result.set_new_repetitions(static_cast<uint32_t>(reps.size()));
  for (const v1::Repetition& r : reps) {
    result.set_new_clean_repetitions(result.new_clean_repetitions() +
                                     r.clean());
  }
  if (auto s = store_.ReplaceRepetitions(set_id,
                                         rescoring.set.scoring_version(), reps);
      !s.ok()) {
    return s;
  }
  store_.AddEvent(
      "set_rescored", set->station_id(),
      absl::StrCat("set ", set_id, ": ", result.old_scoring_version(), " (",
                   result.old_repetitions(), " repetitions, ",
                   result.old_clean_repetitions(), " clean) -> ",
                   result.new_scoring_version(), " (", reps.size(),
                   " repetitions, ", result.new_clean_repetitions(),
                   " clean)"));
  return result;
}

std::vector<v1::StationStatus> Bays::Stations() const {
  std::vector<v1::StationStatus> out;
  for (const auto& bay : AllBays()) {
    std::lock_guard<std::mutex> lock(bay->mu);
    out.push_back(StatusLocked(*bay));
  }
  return out;
}

v1::ClinicSnapshot Bays::Snapshot() const {
  v1::ClinicSnapshot snapshot;
  snapshot.set_pelvic_compensation_threshold_deg(
      config_.pelvic_compensation_threshold_deg);
  for (const auto& bay : AllBays()) {
    std::lock_guard<std::mutex> lock(bay->mu);
    *snapshot.add_stations() = StatusLocked(*bay);
    if (bay->running) {
      *snapshot.add_active_sets() = bay->running->set;
      for (const auto& rep : bay->running->repetitions) {
        *snapshot.add_repetitions() = rep;
      }
      if (!bay->trace_recent.empty()) {
        *snapshot.add_traces() =
            TraceOf(*bay, bay->trace_recent.begin(), bay->trace_recent.end());
      }
    }
  }
  return snapshot;
}

template <typename It>
v1::PelvisTrace Bays::TraceOf(const Bay& bay, It begin, It end) {
  v1::PelvisTrace trace;
  trace.set_station_id(bay.station_id);
  trace.set_set_id(bay.running->set.set_id());
  for (It p = begin; p != end; ++p) {
    trace.add_t_us(p->t_us);
    trace.add_pelvic_drop_deg(static_cast<float>(p->pelvic_drop_deg));
  }
  return trace;
}

std::optional<v1::ClinicEvent> Bays::TraceLocked(Bay& bay) {
  // 5 s at 25 points a second.
  constexpr size_t kRecentPoints = 125;
  // Published every 100 ms of data or so: a tenth of the events one per
  // batch would be, still smooth on a screen.
  constexpr int64_t kPublishEveryUs = 100'000;
  for (const scoring::PelvicTracePoint& p :
       bay.running->scorer->TakePelvicTrace()) {
    bay.trace_unsent.push_back(p);
    bay.trace_recent.push_back(p);
    if (bay.trace_recent.size() > kRecentPoints) bay.trace_recent.pop_front();
  }
  if (bay.trace_unsent.empty() ||
      (bay.trace_unsent.back().t_us - bay.trace_unsent.front().t_us <
           kPublishEveryUs - scoring::kPelvicTraceSpacingUs &&
       bay.trace_unsent.back().t_us >= bay.trace_unsent.front().t_us)) {
    return std::nullopt;
  }
  v1::ClinicEvent event;
  *event.mutable_time() = Now();
  *event.mutable_pelvis_trace() =
      TraceOf(bay, bay.trace_unsent.begin(), bay.trace_unsent.end());
  bay.trace_unsent.clear();
  return event;
}

}  // namespace stephub::ingest
