// The hub's scoring of lateral step-downs: pure functions and an online
// per-set scorer over sensor samples. No I/O, no protobuf, no threads.
#ifndef STEPHUB_HUB_SCORING_SCORING_H_
#define STEPHUB_HUB_SCORING_SCORING_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/types/span.h"
#include "common/recording.h"
#include "common/samples.h"

namespace stephub::scoring {

// Stored with every result so that stored data can be re-scored later.
// 0.4: arm strategy from a wrist IMU (results change only where one is worn).
// 0.5: segmentation on the plate alone bridges the free foot's load, and on
// the sacral IMU alone uses an attitude corrected only while still (results
// change only on stations without thigh and shank IMUs).
// 0.6: the plate alone reads the free foot's load as a step on the body's
// smooth force and corrects its integration at each rest (results change
// only where repetitions are segmented on the plate: no sacral IMU and no
// thigh and shank pair, or those stopped sending).
inline constexpr char kScoringVersion[] = "stephub-scoring/0.6";

enum class Verdict {
  kClean,       // pelvis stayed within the threshold of level
  kPelvicDrop,  // free-leg side dropped beyond the threshold (Trendelenburg)
  kPelvicHike,  // free-leg side hiked beyond the threshold
  // No usable sacral IMU: the pelvis was not seen, so the repetition is
  // neither compensated nor clean (it never counts toward progression).
  kNotAssessed,
};

// Every setting is also listed in scoring_config.cc, which parses the hub's
// overrides and labels results with what differs from these defaults.
struct ScoringConfig {
  // |peak pelvic drop| above this is a compensated repetition.
  double pelvic_compensation_threshold_deg = 5.0;
  // Quality-scale thresholds (see ScoreQuality for their sources).
  double trunk_lean_threshold_deg = 10.0;
  // Knee valgus from thigh and shank IMUs is only as good as their heading
  // on the segments: at the clinic tolerance of 5 deg, 60 deg of knee
  // flexion leaks up to 5 deg into the frontal plane (5.4 deg RMSE on the
  // validation corpus, docs/ACCURACY.md).
  // It is assessed once the calibration movement has given the thigh's and
  // the shank's headings; this assesses it without them too, for sensors
  // known to be mounted square within about 1 deg.
  bool assess_knee_valgus_uncalibrated = false;
  // Standing on one leg, the stance foot is under the centre of mass, near
  // the midline, while the hip joint lies about 8.5 cm lateral of it (half
  // the adult inter-hip-joint distance of some 17 cm) over about 85 cm of
  // leg: the thigh and shank incline some 6 deg from vertical in the
  // frontal plane, top outward. Knee valgus is the frontal-plane angle of
  // those anatomical axes (truth.csv), so once the leg IMUs' headings are
  // known their long axes are taken as inclined this much; at 0 the
  // projection of a flexed, inclined leg reads about 1.5 deg less valgus
  // (docs/ACCURACY.md).
  double standing_leg_inclination_deg = 6.0;
  double knee_valgus_one_point_deg = 8.0;
  double knee_valgus_two_points_deg = 15.0;
  double free_foot_load_threshold = 0.10;  // share of body weight
  double cop_ml_range_threshold_mm = 40.0;
  // Arms used for balance: the forearm (wrist IMU) lifted more than this
  // from where it hung at the standing baseline, at any moment of the
  // repetition. The quality scale (Piva et al. 2006, see ScoreQuality)
  // scores "arm strategy" by eye and gives no angle, so this is ours: an
  // arm hanging relaxed at the side moves only a few degrees in a
  // controlled step-down (it hangs plumb while the trunk bends; the
  // simulator models up to 5 deg plus some 0.5 deg of sway), while an arm
  // an observer sees reaching out for balance is lifted 25 deg or more.
  // 15 deg leaves about 10 deg of margin on either side; it is a
  // convention, not fitted to observers' scores.
  double arm_elevation_threshold_deg = 15.0;
  // The knee's flexion in relaxed one-leg standing, which IMUs calibrated
  // on the standing posture cannot see (they take each segment as upright
  // then). A convention: a stance knee is rarely fully locked; 5 deg is a
  // typical relaxed value, and the error of this guess is a fixed offset.
  double standing_knee_flexion_deg = 5.0;
  // Sensor full scale: a reading within 1% of it is saturated (clipped).
  // Defaults: the common 16 g / 2000 deg/s ranges of MEMS IMUs.
  double accel_full_scale_mps2 = 156.9;
  double gyro_full_scale_radps = 34.9;
};

// The sensors a station has (its hello). The scorer scores from all of
// them, and returns a repetition once each has sent data past its end (or,
// at the end of a batch, once the newest data is 100 ms past it, without
// the lagging sensor's metrics).
// A wrist IMU scores the arm strategy item (arms used for balance).
struct StationSensors {
  std::vector<Placement> imus;
  bool force_plate = false;
  // Sets begin with the prompted calibration movement: after the standing
  // baseline, the free foot goes down beside the stance foot, both knees
  // bend once slowly, and the foot lifts again. The scorer takes each IMU's
  // heading on its segment from it and does not count it as a repetition.
  bool calibration_movement = false;
};

// Where the patient is in the set's opening, for the cue on the bay screen.
enum class SetStep {
  kStandStill,           // no standing baseline yet
  kCalibrationMovement,  // baseline found; the knee bend is awaited
  kStepDowns,            // repetitions are being counted
};

// Every sensor a recording has data for.
StationSensors SensorsOf(const Recording& recording);

// A point of the live pelvic-drop trace: deg relative to standing, toward
// the free side, at a sacral IMU sample's time.
struct PelvicTracePoint {
  int64_t t_us = 0;
  double pelvic_drop_deg = 0;
};

// The live trace's spacing: 25 points a second, enough for the eye and a
// fraction of the IMU's 200 Hz for the screens that draw it.
inline constexpr int64_t kPelvicTraceSpacingUs = 40'000;

// The lateral step-down quality scale (DOMAIN.md): each fault adds points,
// a low total is good. An item the station's sensors cannot see is not
// assessed (nullopt), never guessed.
enum class QualityCategory { kGood, kModerate, kPoor };

struct QualityItems {
  std::optional<int> arm_strategy;  // 0-1, wrist IMU
  std::optional<int> trunk;         // 0-1, sternum IMU
  std::optional<int> pelvis;        // 0-1, sacral IMU
  std::optional<int> knee;          // 0-2, thigh and shank IMUs
  std::optional<int> stance;        // 0-1, force plate
  int total = 0;                    // of the assessed items
  // 0-1 good, 2-3 moderate, 4+ poor (DOMAIN.md).
  QualityCategory category = QualityCategory::kGood;
};

struct Repetition {
  int number = 0;          // counts from 1 within the set; 0 for a partial rep
  int64_t start_us = 0;    // start of lowering
  int64_t deepest_us = 0;  // deepest point
  int64_t end_us = 0;      // end of rising
  // Extreme pelvic drop relative to standing: of the largest and the most
  // negative value during the rep, the one with larger magnitude. 0 when
  // the verdict is kNotAssessed.
  double peak_pelvic_drop_deg = 0;
  double max_pelvic_drop_deg = 0;  // largest value (drop side)
  double max_pelvic_hike_deg = 0;  // largest hike, as a positive number
  Verdict verdict = Verdict::kNotAssessed;  // until the sacral IMU measured it
  bool partial = false;  // the set ended before the rep did; not counted

  // Metrics from the other sensors; nullopt when the station lacks them.
  std::optional<double> peak_trunk_lean_deg;  // sternum; signed as in truth
  std::optional<double> knee_flexion_deg;     // thigh + shank
  std::optional<double> knee_valgus_deg;      // thigh + shank; + = medial
  std::optional<double> cop_ml_range_mm;      // force plate
  // Largest angle of the forearm from where it hung at the standing
  // baseline (wrist IMU), deg: the arm strategy's measure.
  std::optional<double> peak_arm_elevation_deg;
  std::optional<double> cop_ml_mean_speed_mm_s;
  // Largest share of body weight that left the plate (the free foot took
  // it on the floor), 0-1.
  std::optional<double> free_foot_load_fraction;
  std::optional<double> lowering_s;
  std::optional<double> rising_s;
  QualityItems quality;
  // The signal the repetition was found on: "knee flexion", "sacral tilt"
  // or "force plate".
  std::string segmented_by;
  // Why a number is missing or doubtful, for a person ("sacral IMU
  // saturated at 16 g for 40 ms").
  std::vector<std::string> problems;
};

Verdict ClassifyPelvicDrop(double peak_pelvic_drop_deg,
                           const ScoringConfig& config);

// What the quality scale is scored from; nullopt = the sensor is missing.
struct QualityInputs {
  std::optional<double> peak_pelvic_drop_deg;
  std::optional<double> peak_trunk_lean_deg;
  std::optional<double> knee_valgus_deg;
  std::optional<double> free_foot_load_fraction;
  std::optional<double> cop_ml_range_mm;
  std::optional<bool> arms_used;
};

// The lateral step-down quality scale from measured (or true) metrics.
QualityItems ScoreQuality(const QualityInputs& inputs,
                          const ScoringConfig& config);
QualityCategory CategoryOfTotal(int total);
const char* QualityCategoryName(QualityCategory category);

// Scores one set online. Feed every sensor's samples in time order as they
// arrive, one station batch at a time: each sensor's share of the batch,
// then EndBatch(). Results do not depend on how the samples were batched;
// the first >= 1 s in which every sensor is still calibrates the standing
// posture of all of them. Repetitions are found on the best signal the
// station has: knee flexion (thigh and shank IMUs), else the sacrum's
// forward tilt, else the centre of mass's lowering seen by the plate.
class SetScorer {
 public:
  // A station with only a sacral IMU.
  SetScorer(StanceSide stance_side, ScoringConfig config = {});
  SetScorer(StanceSide stance_side, StationSensors sensors,
            ScoringConfig config = {});
  ~SetScorer();
  SetScorer(const SetScorer&) = delete;
  SetScorer& operator=(const SetScorer&) = delete;

  // Each returns the repetitions completed by these samples (every
  // calibrated sensor has data past their end), in order. Samples of a
  // sensor the station did not declare are ignored. Bad times are reported
  // on the next repetition: a sample up to 1 s older than the sensor's last
  // is ignored; time going back by more is the station's clock restarting
  // (every sensor moves to the new clock, the repetition under way is
  // dropped); a sample more than 100 ms ahead of the station's newest data
  // counts only once the sensor's next sample follows it within 2 s.
  // Sample times must lie within +-2^62 us (the hub checks this).
  std::vector<Repetition> AddImuSamples(Placement placement,
                                        absl::Span<const ImuSample> samples);
  std::vector<Repetition> AddForceSamples(
      absl::Span<const ForceSample> samples);
  std::vector<Repetition> AddSacrumSamples(
      absl::Span<const ImuSample> samples) {
    return AddImuSamples(Placement::kSacrum, samples);
  }

  // After every sensor's share of one batch: the sensors that stopped (or
  // lag by more than 100 ms of data time) are given up on, and the
  // repetitions waiting for them are returned. A caller that never calls it
  // (fine for a station with one sensor) waits for every declared sensor:
  // one that never sends keeps the set from calibrating, one that stops
  // holds back every repetition until FinishSet.
  std::vector<Repetition> EndBatch();

  // Ends the set: a rep still in progress comes back with partial = true.
  // Counted repetitions still waiting for a lagging sensor are dropped;
  // FinishSet returns them too.
  std::optional<Repetition> Finish();
  // Ends the set: the counted repetitions not yet returned, then the partial
  // one if any (partial = true, number 0).
  std::vector<Repetition> FinishSet();

  bool calibrated() const;
  SetStep step() const;
  // Each IMU's heading on its segment found from the calibration movement
  // (deg, see HeadingFit); empty before it or without it.
  std::vector<std::pair<Placement, double>> headings() const;
  int repetitions_counted() const;
  // Latest pelvic drop (deg, relative to standing) for live feedback; nullopt
  // before calibration.
  std::optional<double> current_pelvic_drop_deg() const;
  // The pelvic drop since the last call, one point per
  // kPelvicTraceSpacingUs of the sacral IMU's time once the set is
  // calibrated; the newest 256 are kept for a caller that falls behind.
  std::vector<PelvicTracePoint> TakePelvicTrace();
  // What keeps the whole set from being scored (e.g. no standing baseline
  // yet), for a person.
  std::vector<std::string> set_problems() const;
  // Entries held in every buffer of every sensor (samples before and after
  // calibration, stillness windows, gaps) and of the set (repetitions
  // waiting, notes): bounded by data time however long a set runs.
  size_t buffered_samples() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// One batch of a recording as a station sends it: each IMU's samples and
// the plate's within the same 25 ms, as views into the recording.
struct RecordingBatch {
  std::vector<std::pair<Placement, absl::Span<const ImuSample>>> imus;
  absl::Span<const ForceSample> force;
};

// `recording` cut into its 25 ms batches, from its first sample on; every
// IMU the recording holds appears in every batch, with no samples if it
// sent none then. The views live as long as the recording.
std::vector<RecordingBatch> BatchesOf(const Recording& recording);

// Offline: scores a whole recording with exactly the online code. Returns the
// counted repetitions; one cut off by the end of the recording is left out.
std::vector<Repetition> ScoreRecording(const Recording& recording,
                                       const ScoringConfig& config = {});

}  // namespace stephub::scoring

#endif  // STEPHUB_HUB_SCORING_SCORING_H_
