// SetScorer: every sensor's calibration, attitude and angles, segmentation on
// the best signal, and per-repetition metrics; ScoreRecording replays a
// recording through it as a station's batches would arrive.
#include "hub/scoring/scoring.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <deque>
#include <limits>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/geometry.h"
#include "hub/scoring/attitude.h"
#include "hub/scoring/calibration.h"
#include "hub/scoring/force_plate.h"
#include "hub/scoring/segment_angles.h"
#include "hub/scoring/segmentation.h"

namespace stephub::scoring {
namespace {

Vec3 Accel(const ImuSample& s) { return {s.ax_mps2, s.ay_mps2, s.az_mps2}; }
Vec3 Gyro(const ImuSample& s) { return {s.gx_radps, s.gy_radps, s.gz_radps}; }

}  // namespace

Verdict ClassifyPelvicDrop(double peak_pelvic_drop_deg,
                           const ScoringConfig& config) {
  if (peak_pelvic_drop_deg > config.pelvic_compensation_threshold_deg) {
    return Verdict::kPelvicDrop;
  }
  if (peak_pelvic_drop_deg < -config.pelvic_compensation_threshold_deg) {
    return Verdict::kPelvicHike;
  }
  return Verdict::kClean;
}

QualityCategory CategoryOfTotal(int total) {
  if (total <= 1) return QualityCategory::kGood;
  if (total <= 3) return QualityCategory::kModerate;
  return QualityCategory::kPoor;
}

const char* QualityCategoryName(QualityCategory category) {
  switch (category) {
    case QualityCategory::kGood:
      return "good";
    case QualityCategory::kModerate:
      return "moderate";
    case QualityCategory::kPoor:
      return "poor";
  }
  return "good";
}

// The items and the 0-1 good / 2-3 moderate / 4+ poor bands are the lateral
// step-down quality scale of Piva, Fitzgerald, Irrgang et al., "Reliability
// of measures of impairments associated with patellofemoral pain syndrome",
// BMC Musculoskeletal Disorders 7:33, 2006, as used by Rabin & Kozol,
// "Measures of range of motion and strength among healthy women with
// differing quality of lower extremity movement during the lateral
// step-down test", JOSPT 40(12):792-800, 2010. That scale is scored by eye;
// the angles that stand in for the eye here are ours (ScoringConfig):
// - pelvis 5 deg: the hub's compensation threshold (a drop the therapist
//   sees as loss of a level pelvis); a clinical convention.
// - trunk 10 deg of lean: a convention for a lean plainly visible from the
//   front; the simulator's "lean" profile (about -9 +- 2 deg) straddles it.
// - knee 8 / 15 deg of frontal-plane valgus for 1 / 2 points: the visual
//   criteria (tibial tuberosity medial to the second toe / to the foot's
//   medial border) have no published angle; 8 deg is about the upper end of
//   the frontal-plane projection angles reported for healthy single-leg
//   squats (Munro, Herrington & Carolan, J Sport Rehabil 21:7-11, 2012), 15
//   a convention for a marked collapse.
// - stance: the free foot taking > 10% of body weight, or the stance foot's
//   COP swaying > 40 mm sideways; both conventions (quiet one-leg standing
//   sways the COP by some 10-30 mm mediolaterally).
// - arm strategy: the forearm lifted > 15 deg from hanging (wrist IMU); a
//   convention, see ScoringConfig::arm_elevation_threshold_deg.
// The measured simulator data (multi_sensor_test) gave no reason to move
// any of them: most category disagreements with truth come from knee valgus
// near 8 or 15 deg, where the measurement's own error decides.
QualityItems ScoreQuality(const QualityInputs& in, const ScoringConfig& c) {
  QualityItems q;
  if (in.arms_used) q.arm_strategy = *in.arms_used ? 1 : 0;
  if (in.peak_trunk_lean_deg) {
    q.trunk = std::abs(*in.peak_trunk_lean_deg) > c.trunk_lean_threshold_deg;
  }
  if (in.peak_pelvic_drop_deg) {
    q.pelvis = std::abs(*in.peak_pelvic_drop_deg) >
               c.pelvic_compensation_threshold_deg;
  }
  if (in.knee_valgus_deg) {
    q.knee = *in.knee_valgus_deg > c.knee_valgus_two_points_deg  ? 2
             : *in.knee_valgus_deg > c.knee_valgus_one_point_deg ? 1
                                                                 : 0;
  }
  if (in.free_foot_load_fraction || in.cop_ml_range_mm) {
    const bool touched =
        in.free_foot_load_fraction &&
        *in.free_foot_load_fraction > c.free_foot_load_threshold;
    const bool wavered =
        in.cop_ml_range_mm && *in.cop_ml_range_mm > c.cop_ml_range_threshold_mm;
    q.stance = touched || wavered;
  }
  for (const auto& item :
       {q.arm_strategy, q.trunk, q.pelvis, q.knee, q.stance}) {
    q.total += item.value_or(0);
  }
  q.category = CategoryOfTotal(q.total);
  return q;
}

namespace {

// A longer silence than this between two samples is a gap, not jitter.
constexpr int64_t kMaxGapUs = 100'000;
// A sample further ahead than kMaxGapUs of the newest data (the station's,
// its own included) waits for the sensor's next one, which must follow it
// within this, before it counts: one sample dated far in the future must
// not make every later one look late.
constexpr int64_t kMaxAheadUs = 2'000'000;
// Time going back by more than this is the station's clock restarting (a
// reboot resets CLOCK_MONOTONIC); by less, a repeated or late sample.
constexpr int64_t kRestartUs = 1'000'000;
// A repetition waits at most this long (data time) for a lagging sensor.
constexpr int64_t kMaxWaitUs = 100'000;
// A segmentation source this far behind the newest data has stopped.
constexpr int64_t kStalledUs = 500'000;
// Raw samples kept before calibration, and processed ones kept after it
// (a repetition is far shorter; memory stays bounded in long sets).
constexpr int64_t kRawKeepUs = 3'000'000;
// A standing window found keeps its raw samples (and still stretches are
// remembered) at most this long before the set calibrates: past it, a
// sensor that still stands takes its latest window instead.
constexpr int64_t kMaxPinUs = 10'000'000;
// How long every sensor must be still together to calibrate, and how often
// a sensor that is not yet still gets another chance.
constexpr int64_t kStillUs = 1'000'000;
constexpr int64_t kRetryUs = 100'000;
// Processed samples kept behind the data fed to segmentation, beyond what
// a pending or unfinished repetition (or the calibration movement) holds
// on its own: a repetition's start is known within a second or two of it.
// At 30 s this was most of the hub's memory per station in a set (about
// 3.5 MiB: four IMUs' 200 Hz attitudes and the 1 kHz plate).
constexpr int64_t kSeriesKeepUs = 10'000'000;
// Whatever segmentation is doing (or when nothing segments: no source, or
// one that stopped), processed samples further behind the newest data than
// this are dropped: far longer than a repetition and the wait for it.
constexpr int64_t kMaxKeepUs = 70'000'000;
// A repetition still under way after this much data time is dropped rather
// than kept growing: no step-down holds at the bottom for a minute (a
// segmentation signal that drifted and never came back would).
constexpr int64_t kMaxRepUs = 60'000'000;
static_assert(kMaxRepUs < kMaxKeepUs);
// A reading within this share of full scale is clipped.
constexpr double kSaturationShare = 0.99;
constexpr int64_t kNever = std::numeric_limits<int64_t>::min();

enum class Source { kKnee, kSacrum, kPlate };

const char* SourceName(Source source) {
  switch (source) {
    case Source::kKnee:
      return "knee flexion";
    case Source::kSacrum:
      return "sacral tilt";
    case Source::kPlate:
      return "force plate";
  }
  return "";
}

// Hysteresis per depth signal. Knee flexion (deg over standing) swings
// 40-70 deg in a step-down, forward tilt of the sacrum 8-15 deg, the centre
// of mass sinks 4-15 cm; thresholds sit at a fifth to a third of the
// shallowest rep and well above each signal's standing noise (knee 0.3 deg,
// tilt 0.2 deg, centre of mass a few mm).
SegmentationConfig ConfigFor(Source source) {
  SegmentationConfig c;
  if (source == Source::kKnee) {
    c.enter_deg = 10;
    c.leave_deg = 6;
    c.min_peak_deg = 20;
    c.baseline_margin_deg = 1.5;
  } else if (source == Source::kPlate) {  // millimetres
    c.enter_deg = 15;
    c.leave_deg = 8;
    c.min_peak_deg = 25;
    c.baseline_margin_deg = 4;
  }
  return c;
}

std::string SensorName(Placement placement) {
  switch (placement) {
    case Placement::kSacrum:
      return "sacral IMU";
    case Placement::kSternum:
      return "sternal IMU";
    case Placement::kThigh:
      return "thigh IMU";
    case Placement::kShank:
      return "shank IMU";
    case Placement::kWrist:
      return "wrist IMU";
  }
  return "IMU";
}

std::string Seconds(int64_t t_us) {
  return absl::StrFormat("%.2f s", t_us * 1e-6);
}

std::string NoDataAfter(int64_t last_t_us) {
  return last_t_us == kNever
             ? "no data since the station's clock restarted"
             : absl::StrCat("no data after ", Seconds(last_t_us));
}

bool Finite(const ImuSample& s) {
  return std::isfinite(s.ax_mps2) && std::isfinite(s.ay_mps2) &&
         std::isfinite(s.az_mps2) && std::isfinite(s.gx_radps) &&
         std::isfinite(s.gy_radps) && std::isfinite(s.gz_radps);
}

bool Clipped(double value, double full_scale) {
  return std::abs(value) >= kSaturationShare * full_scale;
}

// Bad input met since the previous repetition was returned.
struct Issues {
  int non_finite = 0;
  int backwards = 0;
  int ahead = 0;
  int cop_missing = 0;
};

void ReportIssues(const std::string& sensor, Issues* issues,
                  std::vector<std::string>* problems) {
  if (issues->non_finite > 0) {
    problems->push_back(absl::StrCat(sensor, ": ", issues->non_finite,
                                     " samples with NaN/Inf skipped"));
  }
  if (issues->backwards > 0) {
    problems->push_back(absl::StrCat(sensor, ": ", issues->backwards,
                                     " samples with timestamps going "
                                     "backwards ignored"));
  }
  if (issues->ahead > 0) {
    problems->push_back(absl::StrCat(
        sensor, ": ", issues->ahead,
        " samples dated far ahead of the station's other data (and not "
        "followed by more) ignored"));
  }
  if (issues->cop_missing > 0) {
    problems->push_back(absl::StrCat(sensor, ": centre of pressure missing in ",
                                     issues->cop_missing,
                                     " samples under load (ignored)"));
  }
  *issues = {};
}

struct Gap {
  int64_t from_us = 0, to_us = 0;
};

// A stretch in which every sample completed a still window: from the first
// window's start to the last one's end. Kept apart from the windows, which
// stop growing, to tell whether a sensor stood without a break.
struct StillRun {
  int64_t start_us = 0, end_us = 0;
};

template <typename Window>
void TrackStillness(const std::optional<Window>& window, int64_t t_us,
                    bool* still_now, std::deque<StillRun>* runs) {
  if (window) {
    if (*still_now && !runs->empty()) {
      runs->back().end_us = window->end_us;
    } else {
      runs->push_back({window->start_us, window->end_us});
    }
  }
  *still_now = window.has_value();
  while (!runs->empty() && runs->front().end_us < t_us - kMaxPinUs) {
    runs->pop_front();
  }
}

// Whether one still stretch covers [from, to].
bool StillThrough(const std::deque<StillRun>& runs, int64_t from_us,
                  int64_t to_us) {
  return std::any_of(runs.begin(), runs.end(), [&](const StillRun& r) {
    return r.start_us <= from_us && r.end_us >= to_us;
  });
}

struct AngleSample {
  int64_t t_us = 0;
  Quaternion sensor_to_world;  // kept so a heading found later can apply
  SegmentAngles angles;
  bool accel_saturated = false;
  bool gyro_saturated = false;
  // The sacrum's attitude corrected only while still (ImuChannel::depth),
  // whose forward tilt segmentation follows.
  Quaternion depth_sensor_to_world;
};

// Where [from, to] starts in a time-ordered deque. Most lookups are for
// the newest few samples (segmentation is fed as each sample arrives), so
// a short walk back from the end comes first: a binary search over a 10 s
// series for every sample was 3 % of the hub's CPU at 400 stations.
template <typename T>
typename std::deque<T>::const_iterator FirstAtOrAfter(const std::deque<T>& d,
                                                      int64_t t_us) {
  constexpr int kWalk = 8;
  auto it = d.end();
  for (int i = 0; i < kWalk; ++i) {
    if (it == d.begin() || std::prev(it)->t_us < t_us) return it;
    --it;
  }
  return std::lower_bound(d.begin(), it, t_us,
                          [](const T& s, int64_t t) { return s.t_us < t; });
}

// The samples of a time-ordered deque that cover [from, to]: from the last
// at or before `from` to the first at or after `to`. Sensors sample at
// their own phase, so those strictly within a second span less than one.
template <typename T>
std::vector<T> Stretch(const std::deque<T>& d, int64_t from_us, int64_t to_us) {
  auto it = FirstAtOrAfter(d, from_us);
  if (it != d.begin() && (it == d.end() || it->t_us > from_us)) --it;
  std::vector<T> out;
  for (; it != d.end(); ++it) {
    out.push_back(*it);
    if (it->t_us >= to_us) break;
  }
  return out;
}

// A segment's long axis at rising times, interpolated between its samples.
// The knee is measured at every thigh sample against the shank: walking
// the shank's series once instead of searching it for each sample saves
// most of what these lookups cost (3 % of the hub's CPU at 400 stations).
class LongAxisCursor {
 public:
  // Times asked for are >= from_us and do not go back.
  LongAxisCursor(const std::deque<AngleSample>& series, int64_t from_us)
      : series_(series), next_(FirstAtOrAfter(series, from_us)) {}
  std::optional<Vec3> At(int64_t t_us);

 private:
  const std::deque<AngleSample>& series_;
  std::deque<AngleSample>::const_iterator next_;  // first at or after
};

std::optional<Vec3> LongAxisCursor::At(int64_t t_us) {
  while (next_ != series_.end() && next_->t_us < t_us) ++next_;
  if (next_ == series_.end()) return std::nullopt;
  if (next_->t_us == t_us) return next_->angles.long_axis;
  if (next_ == series_.begin()) return std::nullopt;
  const auto prev = next_ - 1;
  if (next_->t_us - prev->t_us > kMaxGapUs) return std::nullopt;
  const double w =
      static_cast<double>(t_us - prev->t_us) / (next_->t_us - prev->t_us);
  return Normalized(prev->angles.long_axis * (1 - w) +
                    next_->angles.long_axis * w);
}

// Of the largest and the most negative value, the one with larger magnitude.
struct Extremes {
  void Add(double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return hi < lo; }
  double Peak() const { return std::abs(hi) >= std::abs(lo) ? hi : lo; }
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
};

}  // namespace

StationSensors SensorsOf(const Recording& recording) {
  StationSensors sensors;
  for (const auto& [placement, samples] : recording.imu) {
    if (!samples.empty()) sensors.imus.push_back(placement);
  }
  sensors.force_plate = !recording.force.empty();
  sensors.calibration_movement = recording.meta.calibration_movement;
  return sensors;
}

// A sensor's place on the station's clock around a restart of it.
struct ClockState {
  // Another sensor's time went back: this one's samples on the old clock
  // are dropped until it goes back too.
  bool behind = false;
  int64_t old_last_us = 0;  // its last time on the old clock
  // Its next sample starts afresh (no gap to measure from).
  bool resync = false;
};

// What becomes of a sample, by its time.
enum class Admission { kAccept, kHoldAhead, kNextClock, kDrop };

// One IMU: its samples before calibration, then its orientation and angles.
struct ImuChannel {
  Placement placement = Placement::kSacrum;
  bool declared = false;
  bool has_data = false;
  int64_t last_t_us = kNever;  // kNever after the station's clock restarted
  ClockState clock;
  std::optional<ImuSample> ahead;  // waiting for the next sample to confirm
  // On the restarted clock, until every sensor is (see MaybeRestartClock).
  std::vector<ImuSample> next_clock;
  std::deque<ImuSample> raw;
  StillnessDetector stillness;
  std::optional<StillWindow> first_still;
  bool still_now = false;  // the last sample completed a still window
  std::deque<StillRun> still_runs;
  std::optional<StandingPosture> standing;
  bool calibration_failed = false;
  AttitudeState attitude;
  // Sacrum only: the tilt repetitions are segmented on, from an attitude
  // that ignores the pelvis's acceleration in quick repetitions (see
  // StillGates). The pelvic drop keeps `attitude`, validated as it is.
  StillCorrectedAttitude depth;
  std::deque<AngleSample> series;
  std::vector<Gap> gaps;
  Issues issues;
  // While the calibration movement is awaited: the bias-corrected rates.
  std::deque<RateSample> movement_rates;
  std::optional<double> heading_deg;  // from the calibration movement
  // World frame of the angles relative to the attitude's (the heading's
  // turn). The attitude itself stays in its own frame, so that the angles
  // do not depend on when the heading was found.
  Quaternion world_turn;
  // The sensor-frame axis the attitude's world +y was built on.
  Vec3 baseline_forward;
  // The current run of still samples in the standing pose (leg IMUs).
  int64_t rest_start_us = kNever;
  int rest_samples = 0;
  Vec3 rest_gyro_sum;
};

struct ForceChannel {
  bool declared = false;
  bool has_data = false;
  int64_t last_t_us = kNever;
  ClockState clock;
  std::optional<ForceSample> ahead;
  std::vector<ForceSample> next_clock;
  std::deque<ForceSample> raw;
  PlateStillnessDetector stillness;
  std::optional<PlateStillWindow> first_still;
  bool still_now = false;
  std::deque<StillRun> still_runs;
  std::optional<double> weight_n;
  bool calibration_failed = false;
  std::deque<ForceSample> series;
  std::optional<ComDepthTracker> com;
  std::vector<Gap> gaps;
  Issues issues;
};

// The calibration movement is awaited this long (data time) after the
// standing baseline; then the set goes on without it.
constexpr int64_t kMovementAwaitUs = 60'000'000;
// Rates kept from before the calibration movement is seen under way.
constexpr int64_t kMovementLookbackUs = 10'000'000;
// With both feet down the stance foot carries about half the weight; a
// movement during which it kept more than this share was a step-down.
constexpr double kTwoFeetMaxLoadShare = 0.75;
// Segmenting on the plate alone, the movement is the free foot's load
// sharing (the plate cannot follow the body then, see ComDepthTracker): a
// touch-down at the bottom of a step-down lasts a fraction of a second, the
// movement (foot down, knees bend and straighten, foot up) seconds.
constexpr int64_t kMovementMinSharingUs = 1'000'000;

// Standing rests of the leg IMUs: a run this long of samples turning
// slower than kRestRateRadps (after the bias) with the segment within
// kRestTiltDeg of upright.
constexpr int64_t kRestUs = 250'000;
constexpr double kRestRateRadps = 0.03;
constexpr double kRestTiltDeg = 8;

// The IMUs that carry metrics, in the order that picks the calibrating one.
// The wrist comes last: an arm is the likeliest to move while the patient
// stands, so it should not be the one that finds the standing window.
constexpr std::array<Placement, 5> kScoredImus = {
    Placement::kSacrum, Placement::kThigh, Placement::kShank,
    Placement::kSternum, Placement::kWrist};

struct SetScorer::State {
  State(StanceSide side, const StationSensors& sensors, ScoringConfig c)
      : stance_side(side),
        config(c),
        movement(sensors.calibration_movement ? Movement::kAwaited
                                              : Movement::kNone) {
    for (size_t i = 0; i < kScoredImus.size(); ++i) {
      imus[i].placement = kScoredImus[i];
      imus[i].declared = std::find(sensors.imus.begin(), sensors.imus.end(),
                                   kScoredImus[i]) != sensors.imus.end();
    }
    force.declared = sensors.force_plate;
  }

  ImuChannel* Find(Placement placement);
  const ImuChannel& Imu(Placement placement) const;
  int64_t Newest() const;
  // Whether a sensor is sending, judged against the newest data when the
  // last batch ended: while one batch is fed sensor by sensor, a sensor not
  // fed yet must not look as if it had stopped.
  bool Live(bool has_data, int64_t last_t_us, int64_t lag_us) const;

  void AddImu(ImuChannel& ch, const ImuSample& sample);
  void AddForce(const ForceSample& sample);
  template <typename Channel>
  Admission Admit(Channel& ch, int64_t t_us);
  void MaybeRestartClock();
  void RestartClock();
  void AcceptImu(ImuChannel& ch, const ImuSample& sample);
  void AcceptForce(const ForceSample& sample);
  void Track(ImuChannel& ch, const ImuSample& sample);
  void Rest(ImuChannel& ch, const ImuSample& sample);
  void TryCalibrate();
  void CalibrateImu(ImuChannel& ch, const StillWindow& window);
  // >= 1 s of steady standing ending within 100 ms of end_us, if any.
  std::optional<StillWindow> SteadyImuWindow(const ImuChannel& ch,
                                             int64_t end_us) const;
  std::optional<PlateStillWindow> SteadyPlateWindow(int64_t end_us) const;
  bool MoveFinderWindow(ImuChannel* finder, int64_t end_us);
  void CalibratePlate(const std::optional<PlateStillWindow>& window);
  std::optional<Source> BestSource() const;

  // Segmentation: feeds the depth signal as far as the data allows.
  void Advance();
  void FeedKnee();
  void FeedSacrum();
  void FeedPlate();
  void Feed(int64_t t_us, double depth);
  // Which repetitions found are returned: those every calibrated sensor
  // has data past; also those 100 ms of data time old (at the end of a
  // batch, when every sensor that sent in it has been fed); or all.
  enum class Waiting { kForEverySensor, kAtMost100Ms, kNoLonger };
  std::vector<Repetition> Release(Waiting waiting);
  // Those released by a restart of the clock, then `more`.
  std::vector<Repetition> Released(std::vector<Repetition> more) {
    std::vector<Repetition> out = std::exchange(released, {});
    out.insert(out.end(), more.begin(), more.end());
    return out;
  }
  void ResolveMovement(Waiting waiting);
  bool ReadyAfter(int64_t end_us, Waiting waiting) const;
  void ApplyHeading(ImuChannel& ch, double heading_deg);
  void RecomputeAngles(ImuChannel& ch);
  void Prune();

  Repetition Measure(const RepSpan& span, int number);
  std::optional<std::string> Unusable(const ImuChannel& ch,
                                      const RepSpan& span) const;
  void MeasureSacrum(const RepSpan& span, Repetition* r);
  void MeasureSternum(const RepSpan& span, Repetition* r);
  void MeasureKnee(const RepSpan& span, Repetition* r);
  void MeasureArm(const RepSpan& span, Repetition* r);
  void MeasurePlate(const RepSpan& span, Repetition* r);

  const StanceSide stance_side;
  const ScoringConfig config;
  // The calibration movement: none expected, awaited, its span found (and
  // waiting for every sensor's data), or dealt with.
  enum class Movement { kNone, kAwaited, kFound, kDone };
  Movement movement;
  std::optional<RepSpan> movement_span;
  std::vector<std::string> movement_problems;  // for set_problems()
  std::array<ImuChannel, kScoredImus.size()> imus;
  ForceChannel force;
  bool calibrated = false;
  int64_t calibration_end_us = kNever;
  int64_t baseline_end_us = kNever;  // end of the standing window used
  std::optional<Source> source;
  std::optional<RepSegmenter> segmenter;
  bool fed_any = false;
  int64_t fed_until_us = kNever;
  int64_t batch_newest_us = kNever;  // Newest() when the last batch ended
  // After a gap: repetitions are not segmented until the patient stands
  // again, so that the rest of an interrupted repetition is not counted.
  bool waiting_to_stand = false;
  // Steady standing windows found so far, per IMU, while calibrating.
  std::map<Placement, StillWindow> calibration_windows;
  std::deque<RepSpan> pending;
  // The station's clock went back, from .first to .second: a restart once
  // every sensor sending has got there.
  std::optional<std::pair<int64_t, int64_t>> restart;
  // Returned by a restart of the station's clock, for the caller.
  std::vector<Repetition> released;
  std::vector<std::string> notes;  // for the next repetition returned
  int notes_left_out = 0;
  // A note for the next repetition; a station that keeps misbehaving
  // between repetitions gets a count instead of an ever longer list.
  void Note(std::string note) {
    constexpr size_t kMaxNotes = 20;
    if (notes.size() < kMaxNotes) {
      notes.push_back(std::move(note));
    } else {
      ++notes_left_out;
    }
  }
  int counted = 0;
  std::optional<double> current_drop_deg;
  std::deque<PelvicTracePoint> trace;  // TakePelvicTrace
  int64_t last_trace_us = 0;
  bool traced = false;
  bool finished = false;
};

ImuChannel* SetScorer::State::Find(Placement placement) {
  for (ImuChannel& ch : imus) {
    if (ch.placement == placement) return &ch;
  }
  return nullptr;
}

const ImuChannel& SetScorer::State::Imu(Placement placement) const {
  return *const_cast<State*>(this)->Find(placement);
}

int64_t SetScorer::State::Newest() const {
  int64_t newest = kNever;
  for (const ImuChannel& ch : imus) newest = std::max(newest, ch.last_t_us);
  return std::max(newest, force.last_t_us);
}

bool SetScorer::State::Live(bool has_data, int64_t last_t_us,
                            int64_t lag_us) const {
  // Before the first batch ended, one that has not sent may be in it.
  if (batch_newest_us == kNever) return true;
  return has_data && last_t_us >= batch_newest_us - lag_us;
}

void SetScorer::State::AddImu(ImuChannel& ch, const ImuSample& sample) {
  if (!Finite(sample)) {
    ++ch.issues.non_finite;
    return;
  }
  if (!ch.next_clock.empty()) {
    if (sample.t_us > ch.next_clock.back().t_us) {
      ch.next_clock.push_back(sample);
    } else {
      ++ch.issues.backwards;
    }
    MaybeRestartClock();
    return;
  }
  if (ch.ahead) {
    const ImuSample ahead = *std::exchange(ch.ahead, std::nullopt);
    if (sample.t_us > ahead.t_us && sample.t_us - ahead.t_us <= kMaxAheadUs) {
      AcceptImu(ch, ahead);
    } else {
      ++ch.issues.ahead;
    }
  }
  switch (Admit(ch, sample.t_us)) {
    case Admission::kAccept:
      AcceptImu(ch, sample);
      break;
    case Admission::kHoldAhead:
      ch.ahead = sample;
      break;
    case Admission::kNextClock:
      ch.next_clock.push_back(sample);
      MaybeRestartClock();
      break;
    case Admission::kDrop:
      break;
  }
}

// With one sensor, "the station's newest data" is its own previous sample:
// a jump forward is then taken only once the next sample confirms it (a
// real gap), so one sample far in the future costs nothing. A confirmed
// jump that was wrong after all (two bad samples in a row) is undone by the
// next good one, as a restart of the clock, at the cost of the repetition
// under way.
template <typename Channel>
Admission SetScorer::State::Admit(Channel& ch, int64_t t_us) {
  if (ch.clock.behind) {
    if (t_us <= ch.clock.old_last_us - kRestartUs) {
      // Its first sample on the restarted clock.
      ch.clock.behind = false;
      ch.clock.resync = true;
      return Admission::kAccept;
    }
    const int64_t newest = Newest();
    if ((newest != kNever && t_us - newest <= kMaxAheadUs) ||
        t_us - ch.clock.old_last_us > kMaxAheadUs) {
      // Its clock never went back (the sensor that did had jumped ahead):
      // it goes on from where it was.
      ch.clock.behind = false;
      ch.last_t_us = ch.clock.old_last_us;
    } else {
      return Admission::kDrop;  // the rest of its data on the old clock
    }
  }
  if (ch.has_data && ch.last_t_us != kNever && t_us <= ch.last_t_us) {
    if (ch.last_t_us - t_us > kRestartUs) {
      if (!restart) restart = {ch.last_t_us, t_us};
      return Admission::kNextClock;
    }
    // Out-of-order or repeated samples carry no new information.
    ++ch.issues.backwards;
    return Admission::kDrop;
  }
  const int64_t newest = Newest();
  if (newest != kNever && t_us - newest > kMaxGapUs) {
    return Admission::kHoldAhead;
  }
  return Admission::kAccept;
}

// A sensor whose clock went back waits (its samples kept aside) until every
// sensor still sending has got to the new clock too, so that their data on
// the old clock, in the same batch or the next, is used first; at the end
// of a batch, or once one has waited for 2 s of data, it goes ahead.
void SetScorer::State::MaybeRestartClock() {
  bool everyone = true;
  int64_t waited_us = 0;
  auto check = [&](const auto& ch) {
    if (!ch.next_clock.empty()) {
      waited_us = std::max(
          waited_us, ch.next_clock.back().t_us - ch.next_clock.front().t_us);
    } else if (ch.has_data && ch.last_t_us != kNever &&
               Live(ch.has_data, ch.last_t_us, kStalledUs)) {
      everyone = false;
    }
  };
  for (const ImuChannel& ch : imus) check(ch);
  check(force);
  if (everyone || waited_us > kMaxAheadUs) RestartClock();
}

// Everything timed on the old clock ends here: the repetitions it completed
// are returned, the one under way is dropped, and every sensor starts afresh
// on the new clock (segmentation waits for the patient to stand, as after a
// gap). Baselines are kept: the sensors are strapped on as before.
void SetScorer::State::RestartClock() {
  const auto [from_us, to_us] = *restart;
  restart.reset();
  Advance();
  std::vector<Repetition> done = Release(Waiting::kNoLonger);
  released.insert(released.end(), done.begin(), done.end());
  const bool dropped = segmenter && segmenter->InProgress().has_value();
  auto restart_channel = [](auto& ch) {
    ch.ahead.reset();
    ch.raw.clear();
    ch.stillness = {};
    ch.first_still.reset();
    ch.still_now = false;
    ch.still_runs.clear();
    ch.series.clear();
    ch.gaps.clear();
    if (!ch.next_clock.empty()) {
      ch.clock.behind = false;
      ch.clock.resync = true;
    } else if (ch.has_data && ch.last_t_us != kNever) {
      // One that stopped, or is yet to send on the new clock.
      ch.clock.behind = true;
      ch.clock.old_last_us = ch.last_t_us;
    }
    ch.last_t_us = kNever;
  };
  for (ImuChannel& ch : imus) restart_channel(ch);
  restart_channel(force);
  force.com.reset();
  calibration_end_us = kNever;
  batch_newest_us = kNever;
  fed_any = false;
  fed_until_us = kNever;
  if (segmenter) segmenter->Reset();
  waiting_to_stand = true;
  Note(absl::StrCat("station clock restarted at ", Seconds(to_us),
                    " (time went back from ", Seconds(from_us), ")",
                    dropped ? "; the repetition under way was dropped" : "",
                    "; counting resumed once the patient stood again"));
  // Then what the sensors sent on the new clock, as one batch.
  for (ImuChannel& ch : imus) {
    ch.movement_rates.clear();
    for (const ImuSample& sample : std::exchange(ch.next_clock, {})) {
      AddImu(ch, sample);
      if (!calibrated) TryCalibrate();
    }
  }
  for (const ForceSample& sample : std::exchange(force.next_clock, {})) {
    AddForce(sample);
    if (!calibrated) TryCalibrate();
  }
}

void SetScorer::State::AcceptImu(ImuChannel& ch, const ImuSample& sample) {
  if (ch.standing) {
    Track(ch, sample);
  } else if (!calibrated) {
    ch.raw.push_back(sample);
    const auto window = ch.stillness.Add(sample);
    if (window && !ch.first_still) ch.first_still = window;
    if (ch.first_still && ch.first_still->start_us < sample.t_us - kMaxPinUs) {
      ch.first_still = window;
    }
    TrackStillness(window, sample.t_us, &ch.still_now, &ch.still_runs);
    // The standing window found stays until every sensor can use it.
    const int64_t keep_from =
        ch.first_still
            ? std::min(ch.first_still->start_us, sample.t_us - kRawKeepUs)
            : sample.t_us - kRawKeepUs;
    while (ch.raw.front().t_us < keep_from) ch.raw.pop_front();
  }
  ch.has_data = true;
  ch.last_t_us = sample.t_us;
  ch.clock.resync = false;
}

void SetScorer::State::Track(ImuChannel& ch, const ImuSample& sample) {
  if (ch.clock.resync || sample.t_us - ch.last_t_us > kMaxGapUs) {
    // Samples are missing (the station restarted, its sensor stalled): the
    // gyroscope cannot carry the orientation across, the accelerometer
    // re-seeds the tilt.
    ch.attitude = ReseedTilt(ch.attitude, Gyro(sample), Accel(sample));
    if (ch.placement == Placement::kSacrum) {
      // Its bias estimate stays; the stillness seen so far is over.
      StillCorrectedAttitude reseeded;
      reseeded.attitude =
          ReseedTilt(ch.depth.attitude, Gyro(sample), Accel(sample));
      ch.depth = reseeded;
    }
    if (!ch.clock.resync) ch.gaps.push_back({ch.last_t_us, sample.t_us});
  } else {
    ch.attitude = UpdateAttitude(ch.attitude, Gyro(sample), Accel(sample),
                                 (sample.t_us - ch.last_t_us) * 1e-6,
                                 ch.standing->gravity_mps2);
    if (ch.placement == Placement::kSacrum) {
      ch.depth = UpdateStillCorrected(ch.depth, Gyro(sample), Accel(sample),
                                      (sample.t_us - ch.last_t_us) * 1e-6,
                                      ch.standing->gravity_mps2);
    }
  }
  if (ch.placement == Placement::kThigh || ch.placement == Placement::kShank) {
    Rest(ch, sample);
  }
  AngleSample a;
  a.t_us = sample.t_us;
  a.sensor_to_world = ch.attitude.sensor_to_world;
  a.depth_sensor_to_world = ch.depth.attitude.sensor_to_world;
  a.angles = SegmentAnglesOf(ch.world_turn * a.sensor_to_world, *ch.standing);
  // Only segmentation can find the movement. The arm's heading is not
  // needed (its lift is measured from the vertical) and an arm is no hinge.
  if (segmenter && ch.placement != Placement::kWrist &&
      (movement == Movement::kAwaited || movement == Movement::kFound)) {
    ch.movement_rates.push_back(
        {sample.t_us, Gyro(sample) - ch.attitude.gyro_bias_radps});
  }
  const double fa = config.accel_full_scale_mps2;
  const double fg = config.gyro_full_scale_radps;
  a.accel_saturated = Clipped(sample.ax_mps2, fa) ||
                      Clipped(sample.ay_mps2, fa) ||
                      Clipped(sample.az_mps2, fa);
  a.gyro_saturated = Clipped(sample.gx_radps, fg) ||
                     Clipped(sample.gy_radps, fg) ||
                     Clipped(sample.gz_radps, fg);
  ch.series.push_back(a);
  if (ch.placement == Placement::kSacrum) {
    current_drop_deg =
        TowardFreeSideDeg(a.angles.ml_elevation_deg, stance_side);
    if (calibrated &&
        (!traced || sample.t_us - last_trace_us >= kPelvicTraceSpacingUs ||
         sample.t_us < last_trace_us)) {
      constexpr size_t kMaxTrace = 256;
      if (trace.size() == kMaxTrace) trace.pop_front();
      trace.push_back({sample.t_us, *current_drop_deg});
      last_trace_us = sample.t_us;
      traced = true;
    }
  }
}

// Knee valgus compares the thigh's and the shank's frontal planes, so their
// headings must not drift apart, and a gyroscope's bias about the vertical
// (which gravity cannot reveal) drifts them by degrees within a set. Between
// repetitions the patient stands on the planted stance foot with the knee
// straight: the shank and the thigh face as they did at the baseline. Each
// 250 ms of such standing re-measures the gyroscope's whole bias (the mean
// rate while still) and turns the heading back, much as foot-mounted
// inertial navigation applies zero-velocity updates (Foxlin, "Pedestrian
// tracking with shoe-mounted inertial sensors", IEEE CG&A 25(6), 2005).
void SetScorer::State::Rest(ImuChannel& ch, const ImuSample& sample) {
  const Vec3 up = UpInSensorFrame(ch.attitude.sensor_to_world);
  const bool upright =
      Dot(up, StandingUp(*ch.standing)) > std::cos(DegToRad(kRestTiltDeg));
  const bool still =
      Norm(Gyro(sample) - ch.attitude.gyro_bias_radps) < kRestRateRadps;
  if (!upright || !still) {
    ch.rest_start_us = kNever;
    return;
  }
  if (ch.rest_start_us == kNever) {
    ch.rest_start_us = sample.t_us;
    ch.rest_samples = 0;
    ch.rest_gyro_sum = {};
  }
  ch.rest_gyro_sum += Gyro(sample);
  ++ch.rest_samples;
  if (sample.t_us - ch.rest_start_us < kRestUs) return;
  ch.attitude.gyro_bias_radps = ch.rest_gyro_sum / ch.rest_samples;
  ch.attitude = ResetHeading(ch.attitude, ch.baseline_forward);
  ch.rest_start_us = kNever;
}

void SetScorer::State::AddForce(const ForceSample& sample) {
  if (!std::isfinite(sample.fz_n)) {
    ++force.issues.non_finite;
    return;
  }
  if (!force.next_clock.empty()) {
    if (sample.t_us > force.next_clock.back().t_us) {
      force.next_clock.push_back(sample);
    } else {
      ++force.issues.backwards;
    }
    MaybeRestartClock();
    return;
  }
  if (force.ahead) {
    const ForceSample ahead = *std::exchange(force.ahead, std::nullopt);
    if (sample.t_us > ahead.t_us && sample.t_us - ahead.t_us <= kMaxAheadUs) {
      AcceptForce(ahead);
    } else {
      ++force.issues.ahead;
    }
  }
  switch (Admit(force, sample.t_us)) {
    case Admission::kAccept:
      AcceptForce(sample);
      break;
    case Admission::kHoldAhead:
      force.ahead = sample;
      break;
    case Admission::kNextClock:
      force.next_clock.push_back(sample);
      MaybeRestartClock();
      break;
    case Admission::kDrop:
      break;
  }
}

void SetScorer::State::AcceptForce(const ForceSample& sample) {
  if (sample.fz_n >= 20 && !std::isfinite(sample.cop_x_mm)) {
    ++force.issues.cop_missing;
  }
  if (force.weight_n) {
    if (!force.clock.resync && sample.t_us - force.last_t_us > kMaxGapUs) {
      force.gaps.push_back({force.last_t_us, sample.t_us});
    }
    force.series.push_back(sample);
  } else if (!calibrated) {
    force.raw.push_back(sample);
    const auto w = force.stillness.Add(sample);
    if (w && !force.first_still) force.first_still = w;
    if (force.first_still &&
        force.first_still->start_us < sample.t_us - kMaxPinUs) {
      force.first_still = w;
    }
    TrackStillness(w, sample.t_us, &force.still_now, &force.still_runs);
    // Kept from the start of the window any sensor found (see AddImu), but
    // not for one that stopped sending with its window long ago.
    int64_t keep_from = sample.t_us - kRawKeepUs;
    if (force.first_still) {
      keep_from = std::min(keep_from, force.first_still->start_us);
    }
    for (const ImuChannel& ch : imus) {
      if (ch.first_still) {
        keep_from = std::min(keep_from, ch.first_still->start_us);
      }
    }
    keep_from = std::max(keep_from, sample.t_us - kMaxPinUs);
    while (force.raw.front().t_us < keep_from) force.raw.pop_front();
  }
  force.has_data = true;
  force.last_t_us = sample.t_us;
  force.clock.resync = false;
}

// The first sensor (in kScoredImus order, then the plate) that is sending
// finds the standing window. Every other sensor must be still over the
// window's last second too; while the finder keeps standing, a sensor not
// yet still (a trunk settling) is given further chances every 100 ms of
// data time (a fixed grid, so that how batches are cut does not matter),
// after which it is left without a baseline.
void SetScorer::State::TryCalibrate() {
  while (!calibrated) {
    // The finder's first still window, and its still stretches.
    std::optional<std::pair<int64_t, int64_t>> first;
    const std::deque<StillRun>* runs = nullptr;
    ImuChannel* finder = nullptr;
    int64_t finder_last_us = kNever;
    for (ImuChannel& ch : imus) {
      if (!ch.declared || !Live(ch.has_data, ch.last_t_us, kStalledUs)) {
        continue;
      }
      // A sensor that is never still (a faulty accelerometer) must not
      // keep the others from finding the standing posture.
      if (!ch.first_still) continue;
      first = {ch.first_still->start_us, ch.first_still->end_us};
      runs = &ch.still_runs;
      finder = &ch;
      finder_last_us = ch.last_t_us;
      break;
    }
    if (!finder && force.declared && force.first_still &&
        Live(force.has_data, force.last_t_us, kStalledUs)) {
      first = {force.first_still->start_us, force.first_still->end_us};
      runs = &force.still_runs;
      finder_last_us = force.last_t_us;
    }
    if (!first) return;
    const int64_t end_us = std::max(first->second, calibration_end_us);
    for (const ImuChannel& ch : imus) {
      if (ch.declared && Live(ch.has_data, ch.last_t_us, kMaxWaitUs) &&
          ch.last_t_us < end_us) {
        return;
      }
    }
    if (force.declared && Live(force.has_data, force.last_t_us, kMaxWaitUs) &&
        force.last_t_us < end_us) {
      return;
    }
    // A sensor keeps the first steady window it had: later chances come
    // closer to the first repetition, when a thigh may already move. It is
    // calibrated on it at once, so that its samples since need not be kept
    // however long the rest of the station takes.
    std::map<Placement, StillWindow>& own_windows = calibration_windows;
    bool all_steady = true;
    for (ImuChannel& ch : imus) {
      // One that never sent (or stopped) cannot become still by waiting.
      if (!ch.declared || &ch == finder ||
          !Live(ch.has_data, ch.last_t_us, kStalledUs)) {
        continue;
      }
      if (own_windows.count(ch.placement) > 0) continue;
      const auto own = SteadyImuWindow(ch, end_us);
      if (own) {
        own_windows[ch.placement] = *own;
        CalibrateImu(ch, *own);
      } else {
        all_steady = false;
      }
    }
    std::optional<PlateStillWindow> plate_window;
    if (force.declared && force.has_data) {
      plate_window = SteadyPlateWindow(end_us);
      all_steady = all_steady && plate_window.has_value();
    }
    if (!all_steady) {
      const int64_t next_us = end_us + kRetryUs;
      // Has the finder been still without a break up to the next chance?
      if (finder_last_us < next_us) {
        calibration_end_us = end_us;
        return;
      }
      if (StillThrough(*runs, end_us, next_us) &&
          (next_us - first->first <= kRawKeepUs ||
           MoveFinderWindow(finder, next_us))) {
        calibration_end_us = next_us;
        continue;
      }
    }
    calibrated = true;
    baseline_end_us = end_us;
    for (ImuChannel& ch : imus) {
      // Those with a window of their own are calibrated already (a finder
      // too, if it took over from one that stopped).
      if (!ch.declared || ch.standing || ch.calibration_failed) continue;
      if (&ch == finder) {
        // Its own first window, as a sacrum-only station always did.
        CalibrateImu(ch, *ch.first_still);
      } else {
        ch.calibration_failed = true;
        ch.raw.clear();
      }
    }
    if (force.declared) {
      CalibratePlate(finder
                         ? plate_window
                         : std::optional<PlateStillWindow>(force.first_still));
    }
    source = BestSource();
    if (source) segmenter.emplace(ConfigFor(*source));
  }
}

std::optional<StillWindow> SetScorer::State::SteadyImuWindow(
    const ImuChannel& ch, int64_t end_us) const {
  const auto own = SteadyWindowOf(Stretch(ch.raw, end_us - kStillUs, end_us));
  if (own && own->start_us - (end_us - kStillUs) < kMaxGapUs &&
      end_us - own->end_us < kMaxGapUs) {
    return own;
  }
  return std::nullopt;
}

std::optional<PlateStillWindow> SetScorer::State::SteadyPlateWindow(
    int64_t end_us) const {
  const auto own =
      SteadyPlateWindowOf(Stretch(force.raw, end_us - kStillUs, end_us));
  if (own && own->start_us - (end_us - kStillUs) < kMaxGapUs &&
      end_us - own->end_us < kMaxGapUs) {
    return own;
  }
  return std::nullopt;
}

// While the finder stands on and another sensor is not steady yet, the
// finder's window moves along the chances (data time, as they do), so that
// its raw samples need not all be kept from the first one. It has stood
// without a break, so any of its seconds is as good a standing posture.
bool SetScorer::State::MoveFinderWindow(ImuChannel* finder, int64_t end_us) {
  if (finder) {
    const auto moved = SteadyImuWindow(*finder, end_us);
    if (moved) finder->first_still = moved;
    return moved.has_value();
  }
  const auto moved = SteadyPlateWindow(end_us);
  if (moved) force.first_still = moved;
  return moved.has_value();
}

void SetScorer::State::CalibrateImu(ImuChannel& ch, const StillWindow& window) {
  ch.standing = StandingPostureFrom(window);
  ch.baseline_forward = ch.standing->pelvis_forward;
  // The orientation starts at the window's last sample; the later ones the
  // sensor already sent are tracked from there.
  std::deque<ImuSample> raw = std::move(ch.raw);
  ch.raw.clear();
  auto last = std::find_if(raw.begin(), raw.end(), [&](const ImuSample& s) {
    return s.t_us > window.end_us;
  });
  if (last == raw.begin()) {
    ch.calibration_failed = true;
    ch.standing.reset();
    return;
  }
  const ImuSample& seed = *(last - 1);
  ch.attitude = {ch.standing->sensor_to_world, ch.standing->gyro_bias_radps,
                 Gyro(seed)};
  ch.depth = {};
  ch.depth.attitude = ch.attitude;
  ch.last_t_us = seed.t_us;
  ch.series.push_back(
      {seed.t_us, ch.standing->sensor_to_world,
       SegmentAnglesOf(ch.standing->sensor_to_world, *ch.standing), false,
       false, ch.standing->sensor_to_world});
  if (ch.placement == Placement::kSacrum) current_drop_deg = 0;
  for (auto it = last; it != raw.end(); ++it) {
    Track(ch, *it);
    ch.last_t_us = it->t_us;
  }
}

void SetScorer::State::CalibratePlate(
    const std::optional<PlateStillWindow>& window) {
  std::deque<ForceSample> raw = std::move(force.raw);
  force.raw.clear();
  if (!window) {
    force.calibration_failed = true;
    return;
  }
  force.weight_n = window->weight_n;
  force.com.emplace(window->weight_n, window->end_us);
  for (const ForceSample& s : raw) {
    if (s.t_us >= window->end_us) force.series.push_back(s);
  }
}

std::optional<Source> SetScorer::State::BestSource() const {
  auto usable = [this](Placement p) {
    const ImuChannel& ch = Imu(p);
    return ch.standing.has_value() &&
           Live(ch.has_data, ch.last_t_us, kStalledUs);
  };
  if (usable(Placement::kThigh) && usable(Placement::kShank)) {
    return Source::kKnee;
  }
  if (usable(Placement::kSacrum)) return Source::kSacrum;
  if (force.weight_n && Live(force.has_data, force.last_t_us, kStalledUs)) {
    return Source::kPlate;
  }
  return std::nullopt;
}

void SetScorer::State::Advance() {
  TryCalibrate();
  // The headings the movement gives change the angles segmentation runs on:
  // nothing more is fed until they are known, whatever the batches.
  if (!source || movement == Movement::kFound) return;
  // A source that stopped sending hands over to the next best one; the
  // repetition under way is lost with it.
  const std::optional<Source> best = BestSource();
  if (best && *best != *source) {
    const bool stalled =
        *source == Source::kKnee
            ? !Live(true,
                    std::min(Imu(Placement::kThigh).last_t_us,
                             Imu(Placement::kShank).last_t_us),
                    kStalledUs)
        : *source == Source::kSacrum
            ? !Live(true, Imu(Placement::kSacrum).last_t_us, kStalledUs)
            : !Live(true, force.last_t_us, kStalledUs);
    if (stalled) {
      Note(absl::StrCat("repetitions found on ", SourceName(*best),
                        " instead of ", SourceName(*source), " from ",
                        Seconds(fed_until_us), " (that signal stopped)"));
      source = best;
      segmenter.emplace(ConfigFor(*source));
      waiting_to_stand = true;
    }
  }
  switch (*source) {
    case Source::kKnee:
      FeedKnee();
      break;
    case Source::kSacrum:
      FeedSacrum();
      break;
    case Source::kPlate:
      FeedPlate();
      break;
  }
}

void SetScorer::State::FeedKnee() {
  const ImuChannel& thigh = Imu(Placement::kThigh);
  const ImuChannel& shank = Imu(Placement::kShank);
  LongAxisCursor shank_axis_at(shank.series, fed_until_us + 1);
  for (auto it = FirstAtOrAfter(thigh.series, fed_until_us + 1);
       it != thigh.series.end(); ++it) {
    if (movement == Movement::kFound) return;
    if (shank.series.empty() || shank.series.back().t_us < it->t_us) return;
    // A hole in the shank's data shows up as a gap in what is fed.
    const auto shank_axis = shank_axis_at.At(it->t_us);
    if (!shank_axis) continue;
    Feed(it->t_us,
         KneeFlexionDeg(it->angles.long_axis, *shank_axis, /*standing=*/0));
  }
}

void SetScorer::State::FeedSacrum() {
  const ImuChannel& sacrum = Imu(Placement::kSacrum);
  for (auto it = FirstAtOrAfter(sacrum.series, fed_until_us + 1);
       it != sacrum.series.end(); ++it) {
    if (movement == Movement::kFound) return;
    Feed(it->t_us, PelvisAnglesOf(it->depth_sensor_to_world, *sacrum.standing)
                       .forward_tilt_deg);
  }
}

void SetScorer::State::FeedPlate() {
  for (auto it = FirstAtOrAfter(force.series, fed_until_us + 1);
       it != force.series.end(); ++it) {
    if (movement == Movement::kFound) return;
    const bool standing = !segmenter->InProgress().has_value();
    // Started afresh after a restart of the station's clock.
    if (!force.com) force.com.emplace(*force.weight_n, it->t_us);
    Feed(it->t_us, force.com->Add(it->t_us, it->fz_n, standing));
    const std::optional<LoadSharing>& shared = force.com->ended_sharing();
    if (movement == Movement::kAwaited && shared && !segmenter->InProgress() &&
        shared->end_us - shared->start_us >= kMovementMinSharingUs &&
        shared->least_force_n <= kTwoFeetMaxLoadShare * *force.weight_n) {
      movement = Movement::kFound;
      movement_span = RepSpan{.start_us = shared->start_us,
                              .deepest_us = shared->start_us,
                              .end_us = shared->end_us};
    }
  }
}

void SetScorer::State::Feed(int64_t t_us, double depth) {
  if (fed_any && t_us - fed_until_us > kMaxGapUs) {
    // The repetition in progress cannot be measured whole: it is dropped.
    segmenter->Reset();
    waiting_to_stand = true;
  }
  fed_any = true;
  fed_until_us = t_us;
  if (waiting_to_stand) {
    if (depth > ConfigFor(*source).leave_deg) return;
    waiting_to_stand = false;
  }
  if (auto span = segmenter->Add(t_us, depth, 0)) {
    if (movement == Movement::kAwaited) {
      movement = Movement::kFound;
      movement_span = *span;
    } else {
      pending.push_back(*span);
    }
  }
  if (const auto rep = segmenter->InProgress();
      rep && t_us - rep->start_us > kMaxRepUs) {
    segmenter->Reset();
    waiting_to_stand = true;
    Note(absl::StrCat(
        "a repetition from ", Seconds(rep->start_us), " was still under way ",
        Seconds(kMaxRepUs),
        " later and was dropped (no step-down holds that long; did the "
        "sensor slip?); counting resumed once the patient stood again"));
  }
}

// Every calibrated sensor has sent data past end_us, or the laggards are
// given up on (see Waiting).
bool SetScorer::State::ReadyAfter(int64_t end_us, Waiting waiting) const {
  if (waiting == Waiting::kNoLonger) return true;
  if (waiting == Waiting::kAtMost100Ms && Newest() >= end_us + kMaxWaitUs) {
    return true;
  }
  for (const ImuChannel& ch : imus) {
    if (ch.standing && ch.last_t_us < end_us) return false;
  }
  return !(force.weight_n && force.last_t_us < end_us);
}

std::vector<Repetition> SetScorer::State::Release(Waiting waiting) {
  std::vector<Repetition> done;
  const bool movement_found = movement == Movement::kFound;
  ResolveMovement(waiting);
  // Segmentation paused for the headings; it catches up now.
  if (movement_found && movement != Movement::kFound) Advance();
  while (!pending.empty() && movement != Movement::kFound) {
    const RepSpan& span = pending.front();
    if (!ReadyAfter(span.end_us, waiting)) break;
    done.push_back(Measure(span, ++counted));
    pending.pop_front();
  }
  Prune();
  return done;
}

void SetScorer::State::Prune() {
  const int64_t newest = Newest();
  if (newest == kNever) return;
  int64_t keep_from = (fed_any ? fed_until_us : newest) - kSeriesKeepUs;
  if (!pending.empty()) {
    keep_from = std::min(keep_from, pending.front().start_us);
  }
  // A long hold at the bottom is measured whole (Feed bounds it).
  if (const auto rep = segmenter ? segmenter->InProgress() : std::nullopt) {
    keep_from = std::min(keep_from, rep->start_us);
  }
  if (movement == Movement::kFound) {
    keep_from = std::min(keep_from, movement_span->start_us);
  }
  keep_from = std::max(keep_from, newest - kMaxKeepUs);
  // The calibration movement's rates are wanted from its start, which is
  // when the depth last left its baseline: a few seconds before segmentation
  // sees it under way.
  int64_t rates_from = keep_from;
  const bool under_way = segmenter && segmenter->InProgress().has_value();
  if (movement == Movement::kAwaited && !under_way) {
    rates_from = std::max(
        rates_from, (fed_any ? fed_until_us : newest) - kMovementLookbackUs);
  }
  for (ImuChannel& ch : imus) {
    while (!ch.movement_rates.empty() &&
           ch.movement_rates.front().t_us < rates_from) {
      ch.movement_rates.pop_front();
    }
    while (!ch.series.empty() && ch.series.front().t_us < keep_from) {
      ch.series.pop_front();
    }
    std::erase_if(ch.gaps, [&](const Gap& g) { return g.to_us < keep_from; });
  }
  while (!force.series.empty() && force.series.front().t_us < keep_from) {
    force.series.pop_front();
  }
  std::erase_if(force.gaps, [&](const Gap& g) { return g.to_us < keep_from; });
}

// Once the calibration movement's span is found and every sensor has sent
// it whole: the plate (when there is one) confirms both feet were down,
// and each IMU's heading comes from its rates during the span.
void SetScorer::State::ResolveMovement(Waiting waiting) {
  if (movement == Movement::kAwaited && calibrated &&
      Newest() - baseline_end_us > kMovementAwaitUs) {
    movement = Movement::kDone;
    const std::string why = absl::StrCat(
        "no calibration movement within ", kMovementAwaitUs / 1'000'000,
        " s of the standing baseline: IMU headings on their segments not "
        "calibrated (knee valgus not assessed)");
    movement_problems.push_back(why);
    notes.push_back(why);
  }
  if (movement != Movement::kFound) return;
  const RepSpan span = *movement_span;
  if (!ReadyAfter(span.end_us, waiting)) return;
  movement = Movement::kDone;
  if (force.weight_n) {
    double least_n = std::numeric_limits<double>::infinity();
    for (auto it = FirstAtOrAfter(force.series, span.start_us);
         it != force.series.end() && it->t_us <= span.end_us; ++it) {
      least_n = std::min(least_n, it->fz_n);
    }
    if (least_n > kTwoFeetMaxLoadShare * *force.weight_n) {
      // Not the knee bend on two feet: a step-down, and it counts.
      const std::string why =
          "the first movement was a step-down, not the calibration movement "
          "(the stance foot kept its load): counted; IMU headings on their "
          "segments not calibrated (knee valgus not assessed)";
      movement_problems.push_back(why);
      notes.push_back(why);
      pending.push_front(span);
      for (ImuChannel& ch : imus) ch.movement_rates.clear();
      return;
    }
  }
  for (ImuChannel& ch : imus) {
    std::vector<RateSample> rates;
    for (const RateSample& r : ch.movement_rates) {
      if (r.t_us >= span.start_us && r.t_us <= span.end_us) {
        rates.push_back(r);
      }
    }
    ch.movement_rates.clear();
    if (!ch.standing || ch.placement == Placement::kWrist) continue;
    auto fit = HeadingFromHingeMovement(rates, *ch.standing);
    if (fit.ok()) {
      ApplyHeading(ch, fit->heading_deg);
    } else {
      movement_problems.push_back(
          absl::StrCat(SensorName(ch.placement),
                       ": heading not calibrated; in the calibration movement ",
                       fit.status().message()));
    }
  }
  // Knee valgus compares the two legs' segments: both or neither incline.
  ImuChannel& thigh = *Find(Placement::kThigh);
  ImuChannel& shank = *Find(Placement::kShank);
  if (thigh.heading_deg && shank.heading_deg) {
    for (ImuChannel* ch : {&thigh, &shank}) {
      ch->standing = WithInclination(
          *ch->standing,
          -FreeSideX(stance_side) * config.standing_leg_inclination_deg);
      RecomputeAngles(*ch);
    }
  }
}

void SetScorer::State::RecomputeAngles(ImuChannel& ch) {
  for (AngleSample& a : ch.series) {
    a.angles = SegmentAnglesOf(ch.world_turn * a.sensor_to_world, *ch.standing);
  }
}

// Turns the sensor's standing frame to the heading found, and what was
// computed in the old one with it.
void SetScorer::State::ApplyHeading(ImuChannel& ch, double heading_deg) {
  ch.heading_deg = heading_deg;
  const StandingPosture turned = WithHeading(*ch.standing, heading_deg);
  ch.world_turn =
      turned.sensor_to_world * Conjugate(ch.standing->sensor_to_world);
  ch.standing = turned;
  RecomputeAngles(ch);
  if (ch.placement == Placement::kSacrum && !ch.series.empty()) {
    current_drop_deg = TowardFreeSideDeg(
        ch.series.back().angles.ml_elevation_deg, stance_side);
  }
}

std::optional<std::string> SetScorer::State::Unusable(
    const ImuChannel& ch, const RepSpan& span) const {
  const std::string name = SensorName(ch.placement);
  if (!ch.standing) {
    return absl::StrCat(name,
                        ": no standing baseline (it was not still, or sent "
                        "nothing, while the patient stood at the start); "
                        "its metrics are left out");
  }
  if (ch.last_t_us < span.end_us) {
    return absl::StrCat(name, ": ", NoDataAfter(ch.last_t_us),
                        " (it stopped?); its metrics are left out");
  }
  for (const Gap& g : ch.gaps) {
    if (g.to_us > span.start_us && g.from_us < span.end_us) {
      return absl::StrCat(name, ": ", Seconds(g.to_us - g.from_us),
                          " of data missing during the repetition; its "
                          "metrics are left out");
    }
  }
  int gyro_saturated = 0;
  for (auto it = FirstAtOrAfter(ch.series, span.start_us);
       it != ch.series.end() && it->t_us <= span.end_us; ++it) {
    gyro_saturated += it->gyro_saturated;
  }
  if (gyro_saturated > 0) {
    return absl::StrFormat(
        "%s: gyroscope saturated (|rate| at its %.0f deg/s full scale) in %d "
        "samples; its angles are unreliable and left out",
        name, RadToDeg(config.gyro_full_scale_radps), gyro_saturated);
  }
  return std::nullopt;
}

namespace {

// Accelerometer clipping only costs the filter its tilt correction for a
// moment (the gate ignores |a| far from g): reported, metrics kept.
void ReportAccelSaturation(const ImuChannel& ch, const RepSpan& span,
                           double full_scale, Repetition* r) {
  int clipped = 0;
  for (auto it = FirstAtOrAfter(ch.series, span.start_us);
       it != ch.series.end() && it->t_us <= span.end_us; ++it) {
    clipped += it->accel_saturated;
  }
  if (clipped > 0) {
    r->problems.push_back(absl::StrFormat(
        "%s: accelerometer saturated (at its %.0f g full scale) in %d "
        "samples; orientation carried by the gyroscope there",
        SensorName(ch.placement), full_scale / 9.80665, clipped));
  }
}

}  // namespace

void SetScorer::State::MeasureSacrum(const RepSpan& span, Repetition* r) {
  const ImuChannel& ch = Imu(Placement::kSacrum);
  if (!ch.declared) {
    r->problems.push_back("no sacral IMU: pelvic drop not measured");
    return;
  }
  if (auto why = Unusable(ch, span)) {
    r->problems.push_back(*why);
    return;
  }
  ReportAccelSaturation(ch, span, config.accel_full_scale_mps2, r);
  Extremes drop;
  for (auto it = FirstAtOrAfter(ch.series, span.start_us);
       it != ch.series.end() && it->t_us <= span.end_us; ++it) {
    drop.Add(TowardFreeSideDeg(it->angles.ml_elevation_deg, stance_side));
  }
  if (drop.empty()) return;
  r->peak_pelvic_drop_deg = drop.Peak();
  r->max_pelvic_drop_deg = std::max(drop.hi, 0.0);
  r->max_pelvic_hike_deg = std::max(-drop.lo, 0.0);
  r->verdict = ClassifyPelvicDrop(r->peak_pelvic_drop_deg, config);
}

void SetScorer::State::MeasureSternum(const RepSpan& span, Repetition* r) {
  const ImuChannel& ch = Imu(Placement::kSternum);
  if (!ch.declared) return;
  if (auto why = Unusable(ch, span)) {
    r->problems.push_back(*why);
    return;
  }
  ReportAccelSaturation(ch, span, config.accel_full_scale_mps2, r);
  Extremes lean;
  for (auto it = FirstAtOrAfter(ch.series, span.start_us);
       it != ch.series.end() && it->t_us <= span.end_us; ++it) {
    lean.Add(TowardFreeSideDeg(it->angles.ml_elevation_deg, stance_side));
  }
  if (!lean.empty()) r->peak_trunk_lean_deg = lean.Peak();
}

void SetScorer::State::MeasureKnee(const RepSpan& span, Repetition* r) {
  const ImuChannel& thigh = Imu(Placement::kThigh);
  const ImuChannel& shank = Imu(Placement::kShank);
  if (!thigh.declared || !shank.declared) return;
  bool usable = true;
  for (const ImuChannel* ch : {&thigh, &shank}) {
    if (auto why = Unusable(*ch, span)) {
      r->problems.push_back(*why);
      usable = false;
    } else {
      ReportAccelSaturation(*ch, span, config.accel_full_scale_mps2, r);
    }
  }
  if (!usable) return;
  Extremes flexion, valgus;
  LongAxisCursor shank_axis_at(shank.series, span.start_us);
  for (auto it = FirstAtOrAfter(thigh.series, span.start_us);
       it != thigh.series.end() && it->t_us <= span.end_us; ++it) {
    const auto shank_axis = shank_axis_at.At(it->t_us);
    if (!shank_axis) continue;
    flexion.Add(KneeFlexionDeg(it->angles.long_axis, *shank_axis,
                               config.standing_knee_flexion_deg));
    valgus.Add(KneeValgusDeg(it->angles.long_axis, *shank_axis, stance_side));
  }
  if (flexion.empty()) return;
  r->knee_flexion_deg = flexion.hi;
  if ((thigh.heading_deg && shank.heading_deg) ||
      config.assess_knee_valgus_uncalibrated) {
    r->knee_valgus_deg = valgus.Peak();
  }
}

// The arm's lift is the angle of the forearm from where it hung standing:
// the filter's tilt alone, so the heading, which drifts and which no
// standing pose reveals, does not enter it.
void SetScorer::State::MeasureArm(const RepSpan& span, Repetition* r) {
  const ImuChannel& ch = Imu(Placement::kWrist);
  if (!ch.declared) return;
  if (auto why = Unusable(ch, span)) {
    r->problems.push_back(absl::StrCat(*why, " (arm strategy not assessed)"));
    return;
  }
  ReportAccelSaturation(ch, span, config.accel_full_scale_mps2, r);
  Extremes lift;
  for (auto it = FirstAtOrAfter(ch.series, span.start_us);
       it != ch.series.end() && it->t_us <= span.end_us; ++it) {
    lift.Add(ElevationFromHangingDeg(it->angles.long_axis));
  }
  if (!lift.empty()) r->peak_arm_elevation_deg = lift.hi;
}

void SetScorer::State::MeasurePlate(const RepSpan& span, Repetition* r) {
  if (!force.declared) return;
  if (!force.weight_n) {
    r->problems.push_back(
        "force plate: no standing body weight (the load was not steady "
        "while the patient stood at the start); its metrics are left out");
    return;
  }
  if (force.last_t_us < span.end_us) {
    r->problems.push_back(
        absl::StrCat("force plate: ", NoDataAfter(force.last_t_us),
                     " (it stopped?); its metrics are "
                     "left out"));
    return;
  }
  for (const Gap& g : force.gaps) {
    if (g.to_us > span.start_us && g.from_us < span.end_us) {
      r->problems.push_back(absl::StrCat(
          "force plate: ", Seconds(g.to_us - g.from_us),
          " of data missing during the repetition; its metrics are left "
          "out"));
      return;
    }
  }
  std::vector<ForceSample> samples;
  for (auto it = FirstAtOrAfter(force.series, span.start_us);
       it != force.series.end() && it->t_us <= span.end_us; ++it) {
    samples.push_back(*it);
  }
  const PlateRepMetrics m = PlateMetricsOf(samples, *force.weight_n);
  r->cop_ml_range_mm = m.cop_ml_range_mm;
  r->cop_ml_mean_speed_mm_s = m.cop_ml_mean_speed_mm_s;
  r->free_foot_load_fraction = m.free_foot_load_fraction;
}

Repetition SetScorer::State::Measure(const RepSpan& span, int number) {
  Repetition r;
  r.number = number;
  r.partial = number == 0;
  r.start_us = span.start_us;
  r.deepest_us = span.deepest_us;
  r.end_us = span.end_us;
  r.segmented_by = SourceName(*source);
  r.lowering_s = (span.deepest_us - span.start_us) * 1e-6;
  if (!r.partial) r.rising_s = (span.end_us - span.deepest_us) * 1e-6;
  MeasureSacrum(span, &r);
  MeasureSternum(span, &r);
  MeasureKnee(span, &r);
  MeasureArm(span, &r);
  MeasurePlate(span, &r);
  for (ImuChannel& ch : imus) {
    ReportIssues(SensorName(ch.placement), &ch.issues, &r.problems);
  }
  ReportIssues("force plate", &force.issues, &r.problems);
  r.problems.insert(r.problems.end(), notes.begin(), notes.end());
  if (notes_left_out > 0) {
    r.problems.push_back(
        absl::StrCat("and ", notes_left_out, " more notes like these"));
  }
  notes.clear();
  notes_left_out = 0;
  QualityInputs in;
  if (Imu(Placement::kSacrum).declared &&
      !Unusable(Imu(Placement::kSacrum), span)) {
    in.peak_pelvic_drop_deg = r.peak_pelvic_drop_deg;
  }
  in.peak_trunk_lean_deg = r.peak_trunk_lean_deg;
  in.knee_valgus_deg = r.knee_valgus_deg;
  in.free_foot_load_fraction = r.free_foot_load_fraction;
  in.cop_ml_range_mm = r.cop_ml_range_mm;
  if (r.peak_arm_elevation_deg) {
    in.arms_used =
        *r.peak_arm_elevation_deg > config.arm_elevation_threshold_deg;
  }
  r.quality = ScoreQuality(in, config);
  return r;
}

SetScorer::SetScorer(StanceSide stance_side, ScoringConfig config)
    : SetScorer(stance_side, StationSensors{{Placement::kSacrum}, false},
                config) {}

SetScorer::SetScorer(StanceSide stance_side, StationSensors sensors,
                     ScoringConfig config)
    : state_(std::make_unique<State>(stance_side, sensors, config)) {}

SetScorer::~SetScorer() = default;

std::vector<Repetition> SetScorer::AddImuSamples(
    Placement placement, absl::Span<const ImuSample> samples) {
  State& s = *state_;
  ImuChannel* ch = s.Find(placement);
  if (s.finished || ch == nullptr || !ch->declared) return {};
  for (const ImuSample& sample : samples) {
    s.AddImu(*ch, sample);
    // At once, so that a large batch does not outrun the standing window.
    if (!s.calibrated) s.TryCalibrate();
  }
  s.Advance();
  return s.Released(s.Release(State::Waiting::kForEverySensor));
}

std::vector<Repetition> SetScorer::AddForceSamples(
    absl::Span<const ForceSample> samples) {
  State& s = *state_;
  if (s.finished || !s.force.declared) return {};
  for (const ForceSample& sample : samples) {
    s.AddForce(sample);
    if (!s.calibrated) s.TryCalibrate();
  }
  s.Advance();
  return s.Released(s.Release(State::Waiting::kForEverySensor));
}

std::vector<Repetition> SetScorer::EndBatch() {
  State& s = *state_;
  if (s.finished) return {};
  // A sensor whose clock restarted waits no longer for the others.
  if (s.restart) s.RestartClock();
  s.batch_newest_us = s.Newest();
  // Sensors that stopped are given up on only now (see Live).
  if (!s.calibrated) s.TryCalibrate();
  s.Advance();
  return s.Released(s.Release(State::Waiting::kAtMost100Ms));
}

std::vector<Repetition> SetScorer::FinishSet() {
  State& s = *state_;
  if (s.finished) return {};
  if (s.restart) s.RestartClock();
  s.finished = true;
  std::vector<Repetition> out =
      s.Released(s.Release(State::Waiting::kNoLonger));
  if (!s.segmenter) return out;
  if (const auto span = s.segmenter->InProgress()) {
    out.push_back(s.Measure(*span, 0));
  }
  return out;
}

std::optional<Repetition> SetScorer::Finish() {
  std::vector<Repetition> out = FinishSet();
  if (out.empty() || !out.back().partial) return std::nullopt;
  return out.back();
}

bool SetScorer::calibrated() const { return state_->calibrated; }

SetStep SetScorer::step() const {
  const State& s = *state_;
  if (!s.calibrated) return SetStep::kStandStill;
  if (s.movement == State::Movement::kAwaited ||
      s.movement == State::Movement::kFound) {
    return SetStep::kCalibrationMovement;
  }
  return SetStep::kStepDowns;
}

std::vector<std::pair<Placement, double>> SetScorer::headings() const {
  std::vector<std::pair<Placement, double>> out;
  for (const ImuChannel& ch : state_->imus) {
    if (ch.heading_deg) out.emplace_back(ch.placement, *ch.heading_deg);
  }
  return out;
}

int SetScorer::repetitions_counted() const { return state_->counted; }

std::optional<double> SetScorer::current_pelvic_drop_deg() const {
  // A sacral IMU may have its baseline before the rest of the station.
  if (!state_->calibrated) return std::nullopt;
  return state_->current_drop_deg;
}

std::vector<PelvicTracePoint> SetScorer::TakePelvicTrace() {
  std::vector<PelvicTracePoint> out(state_->trace.begin(), state_->trace.end());
  state_->trace.clear();
  return out;
}

size_t SetScorer::buffered_samples() const {
  const State& s = *state_;
  // The live trace is not counted: it holds at most 256 points whatever
  // the data.
  size_t n = s.pending.size() + s.notes.size();
  for (const ImuChannel& ch : s.imus) {
    n += ch.raw.size() + ch.stillness.buffered_samples() +
         ch.still_runs.size() + ch.series.size() + ch.gaps.size() +
         ch.next_clock.size() + ch.movement_rates.size();
  }
  const ForceChannel& f = s.force;
  n += f.raw.size() + f.stillness.buffered_samples() + f.still_runs.size() +
       f.series.size() + f.gaps.size() + f.next_clock.size();
  return n;
}

std::vector<std::string> SetScorer::set_problems() const {
  const State& s = *state_;
  std::vector<std::string> problems;
  bool any_data = s.force.has_data;
  for (const ImuChannel& ch : s.imus) any_data = any_data || ch.has_data;
  if (!s.calibrated && any_data) {
    problems.push_back(
        "no standing baseline yet: the patient must stand still on the "
        "stance leg for at least 1 s before the first repetition");
  }
  if (s.calibrated && !s.source) {
    problems.push_back("no sensor could be calibrated to find repetitions on");
  }
  for (const ImuChannel& ch : s.imus) {
    if (ch.calibration_failed) {
      problems.push_back(
          absl::StrCat(SensorName(ch.placement), ": no standing baseline"));
    }
  }
  if (s.force.calibration_failed) {
    problems.push_back("force plate: no standing body weight");
  }
  problems.insert(problems.end(), s.movement_problems.begin(),
                  s.movement_problems.end());
  return problems;
}

std::vector<RecordingBatch> BatchesOf(const Recording& recording) {
  std::vector<RecordingBatch> batches;
  constexpr int64_t kBatchUs = 25'000;
  int64_t first = std::numeric_limits<int64_t>::max();
  int64_t last = std::numeric_limits<int64_t>::min();
  for (const auto& [placement, samples] : recording.imu) {
    if (samples.empty()) continue;
    first = std::min(first, samples.front().t_us);
    last = std::max(last, samples.back().t_us);
  }
  if (!recording.force.empty()) {
    first = std::min(first, recording.force.front().t_us);
    last = std::max(last, recording.force.back().t_us);
  }
  std::map<Placement, size_t> next;
  size_t next_force = 0;
  for (int64_t from = first; from <= last; from += kBatchUs) {
    const int64_t to = from + kBatchUs;
    RecordingBatch& batch = batches.emplace_back();
    for (const auto& [placement, samples] : recording.imu) {
      size_t& i = next[placement];
      const size_t begin = i;
      while (i < samples.size() && samples[i].t_us < to) ++i;
      batch.imus.emplace_back(
          placement, absl::MakeConstSpan(samples).subspan(begin, i - begin));
    }
    const size_t begin = next_force;
    while (next_force < recording.force.size() &&
           recording.force[next_force].t_us < to) {
      ++next_force;
    }
    batch.force =
        absl::MakeConstSpan(recording.force).subspan(begin, next_force - begin);
  }
  return batches;
}

std::vector<Repetition> ScoreRecording(const Recording& recording,
                                       const ScoringConfig& config) {
  std::vector<Repetition> reps;
  const StationSensors sensors = SensorsOf(recording);
  if (sensors.imus.empty() && !sensors.force_plate) return reps;
  SetScorer scorer(recording.meta.stance_side, sensors, config);
  auto keep = [&reps](std::vector<Repetition> done) {
    reps.insert(reps.end(), done.begin(), done.end());
  };
  // Batches as a station sends them, so that the offline path exercises
  // exactly the online one.
  for (const RecordingBatch& batch : BatchesOf(recording)) {
    for (const auto& [placement, samples] : batch.imus) {
      keep(scorer.AddImuSamples(placement, samples));
    }
    keep(scorer.AddForceSamples(batch.force));
    keep(scorer.EndBatch());
  }
  // A repetition cut off by the end of the recording is not counted.
  for (Repetition& r : scorer.FinishSet()) {
    if (!r.partial) reps.push_back(std::move(r));
  }
  return reps;
}

}  // namespace stephub::scoring
