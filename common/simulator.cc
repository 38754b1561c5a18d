// Kinematic model of a patient doing lateral step-downs (stance shank and
// thigh, pelvis, trunk) and the IMUs and force plate it drives; see
// simulator.h.
#include "common/simulator.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/geometry.h"

namespace stephub {
namespace {

constexpr double kGravity = 9.81;
// Central differences over +-1 ms: far shorter than any motion time scale
// (> 0.1 s) yet long enough that rounding stays below 1e-9 of the result.
// It is also the force plate's sample interval at 1 kHz, so neighbouring
// force samples share the centre of mass they need.
constexpr int64_t kDiffStepUs = 1000;
// The truth's extremes are searched on this grid (finer than any IMU).
constexpr int64_t kTruthGridUs = 1000;
// Exponent of depth in the drop profile: the pelvis starts dropping a little
// after the knee starts bending, and the profile stays smooth at depth 0.
constexpr double kDropDepthExponent = 1.5;
// Rep-to-rep variability of the hold (fraction) and of pelvic turning (deg).
constexpr double kHoldVariation = 0.2;
constexpr double kHeadingAtDepthMaxDeg = 4;
// A dropping free side carries the pelvis medially, toward the free side.
constexpr double kLateralShiftPerDropM = 0.002;
// The trunk bends forward over the hips a little more than the pelvis tilts,
// which keeps the centre of mass over the foot while the hips sit back, and
// follows half of the pelvis's turning.
constexpr double kTrunkFlexionOverPelvisDeg = 8;
constexpr double kTrunkHeadingShare = 0.5;
// Quiet-standing micro-sway amplitudes.
constexpr double kRollSwayDeg = 0.1;
constexpr double kTiltSwayDeg = 0.15;
constexpr double kHeadingSwayDeg = 0.2;
constexpr double kHorizontalSwayM = 0.002;
// The knee never holds perfectly still; standing, 0.3 deg of it moves the
// hip up and down by about 0.1 mm.
constexpr double kKneeSwayDeg = 0.3;
constexpr double kTrunkRollSwayDeg = 0.2;
constexpr double kTrunkTiltSwayDeg = 0.3;
constexpr double kTrunkHeadingSwayDeg = 0.3;
constexpr double kCopSwayForwardRatio = 1.5;
// Centre-of-pressure noise and the COP validity limit of the format.
constexpr double kCopNoiseMm = 0.3;
constexpr double kCopMinForceN = 20;
// A touch-down of the free foot: its length, where it is centred relative to
// the middle of the hold, and how fast the weight goes on and off.
constexpr double kTouchdownMinS = 0.2;
constexpr double kTouchdownMaxS = 0.5;
constexpr double kTouchdownCentreJitterS = 0.1;
constexpr double kTouchdownRampS = 0.05;
// Bounds of the leg fits: hips sitting back, and the turn of the knee's
// plane about the ankle-hip line.
constexpr double kMaxSitBackM = 0.15;  // behind the ankle
constexpr double kMaxKneeTurnDeg = 45;
constexpr int kBisections = 60;

// Segment proportions as fractions of body height and mass fractions, after
// Winter, "Biomechanics and Motor Control of Human Movement" (4th ed.,
// 2009), table 4.1; offsets of the joints and sensors from the skin points
// are typical adult values scaled by height.
constexpr double kShankPerHeight = 0.246;  // knee to ankle joint
constexpr double kThighPerHeight = 0.245;  // hip to knee joint
constexpr double kAnkleHeightPerHeight = 0.039;
// Hip joint centres from the sacral IMU (over S2), pelvis frame.
constexpr double kHipHalfWidthPerHeight = 0.05;
constexpr double kHipForwardPerHeight = 0.06;
constexpr double kHipBelowPerHeight = 0.04;
// Lumbosacral joint (the trunk's pivot) from the sacral IMU, pelvis frame.
constexpr double kLumbosacralForwardPerHeight = 0.03;
constexpr double kLumbosacralAbovePerHeight = 0.03;
// Sternal IMU from the lumbosacral joint, trunk frame.
constexpr double kSternumForwardPerHeight = 0.10;
constexpr double kSternumAbovePerHeight = 0.22;
// Skin offsets of the leg IMUs: lateral thigh at mid-thigh, shank just
// below mid-shank on its lateral side.
constexpr double kThighImuAlong = 0.5;  // fraction of the thigh from the knee
constexpr double kThighImuOutM = 0.08;
constexpr double kShankImuAlong = 0.6;  // fraction of the shank from ankle
constexpr double kShankImuOutM = 0.05;
// Mass fractions (sum 1) and where each part's centre of mass sits.
constexpr double kFootMass = 0.0145;
constexpr double kShankMass = 0.0465;
constexpr double kThighMass = 0.100;
constexpr double kPelvisMass = 0.142;
constexpr double kUpperBodyMass = 0.536;  // trunk, head and arms
constexpr double kFreeLegMass = 0.161;
constexpr double kShankComFromKnee = 0.433;
constexpr double kThighComFromHip = 0.433;
constexpr double kUpperBodyComAbovePerHeight = 0.17;  // trunk frame, from L5/S1
constexpr double kUpperBodyComForwardPerHeight = 0.02;
constexpr double kFreeLegComBelowHipPerHeight = 0.19;
// Standing on one leg, the centre of mass sits over the stance foot a little
// ahead of the ankle.
constexpr double kComAheadOfAnkleM = 0.05;
// The arm (Winter's table 4.1 again): shoulder joint from L5/S1 in the
// trunk frame, and the wrist IMU on the forearm some 3 cm above the wrist
// joint (upper arm 0.186, forearm 0.146 of height). Its mass stays lumped
// in the upper body's: a 5% arm lifted 45 deg would move the centre of
// mass by about a centimetre, which a patient using the arms for balance
// offsets elsewhere, and the force plate's signals stay the same whether or
// not a wrist IMU is worn.
constexpr double kShoulderOutPerHeight = 0.11;
constexpr double kShoulderAbovePerHeight = 0.24;
constexpr double kWristImuFromShoulderPerHeight = 0.31;
// A hanging arm sways about as little as the trunk while standing.
constexpr double kArmSwayDeg = 0.3;
// Arms used for balance go out mostly sideways: the direction of the lift
// from straight out to the side (0) toward the front (90).
constexpr double kArmUseDirectionMinDeg = -20;
constexpr double kArmUseDirectionMaxDeg = 40;

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Independent streams per purpose keep the output identical however the
// caller slices time into GenerateUntil calls, and keep the pelvis's draws
// what they were before the limbs were modelled.
enum class Stream : uint64_t {
  kBody = 1,
  kImu = 2,
  kForce = 3,
  kSet = 4,
  kLimbs = 5,
  // The arm came last: its own draws leave every other sensor's as they
  // were, with or without a wrist IMU.
  kArms = 6,     // per set: which reps use the arms, and how far
  kArmSway = 7,  // the hanging arm's quiet sway
};

std::mt19937_64 MakeRng(uint64_t seed, Stream stream, uint64_t index = 0) {
  return std::mt19937_64(SplitMix64(
      SplitMix64(seed) ^ (static_cast<uint64_t>(stream) << 32) ^ index));
}

double Uniform(std::mt19937_64& rng, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}

double Gaussian(std::mt19937_64& rng, double mean, double sd) {
  if (sd <= 0) return mean;
  return std::normal_distribution<double>(mean, sd)(rng);
}

// Always draws, so that a profile's spread cannot shift later draws.
double Normal(std::mt19937_64& rng, double mean, double sd) {
  return mean + sd * std::normal_distribution<double>(0, 1)(rng);
}

Vec3 GaussianVec(std::mt19937_64& rng, double sd) {
  const double x = Gaussian(rng, 0, sd);
  const double y = Gaussian(rng, 0, sd);
  return {x, y, Gaussian(rng, 0, sd)};
}

Mat3 FromColumns(const Vec3& x, const Vec3& y, const Vec3& z) {
  return Transpose(Mat3::FromRows(x, y, z));
}

// Physiological sway: a sum of slow sinusoids, smooth so that its
// derivatives (which the sensors see) are well defined.
class Sway {
 public:
  Sway() = default;
  Sway(std::mt19937_64& rng, double amplitude) {
    for (Wave& w : waves_) {
      w.amplitude = amplitude * Uniform(rng, 0.3, 0.6);
      w.omega = 2 * kPi * Uniform(rng, 0.1, 0.8);
      w.phase = Uniform(rng, 0, 2 * kPi);
    }
  }
  double At(double t) const {
    double sum = 0;
    for (const Wave& w : waves_) {
      sum += w.amplitude * std::sin(w.omega * t + w.phase);
    }
    return sum;
  }

 private:
  struct Wave {
    double amplitude = 0, omega = 0, phase = 0;
  };
  std::array<Wave, 3> waves_;
};

// Index of each IMU in the per-IMU arrays; also the segment it rides on.
enum ImuIndex {
  kSacrumImu = 0,
  kSternumImu,
  kThighImu,
  kShankImu,
  kWristImu,  // the forearm of the free-leg side's arm
  kImuCount
};

// One repetition's posture at its deepest point.
struct RepShape {
  double drop_deg = 0;          // pelvic drop toward the free side
  double heading_deg = 0;       // pelvis turn
  double knee_flexion_deg = 0;  // lowers the hip
  double sit_back_m = 0;        // how far the sacrum moves back
  // Turn of the stance knee's plane about the ankle-hip line, + = the knee
  // toward the other leg: hip adduction and internal rotation, which is
  // what a knee collapsing medially is made of.
  double knee_turn_deg = 0;
  double trunk_lean_deg = 0;  // + = toward the free side
  // The arm's angle from hanging, and the direction it lifts toward: 0 =
  // straight out to the side, 90 = forward.
  double arm_elevation_deg = 0;
  double arm_direction_deg = 0;
};

struct RepPlan {
  int64_t start_us = 0;   // lowering starts
  int64_t bottom_us = 0;  // deepest point reached, hold starts
  int64_t rise_us = 0;    // rising starts
  int64_t end_us = 0;     // standing again
  RepShape shape;
  // What the knee's turn is fitted to at the deepest point.
  double knee_valgus_deg = 0;
  // The free foot on the floor; equal times: no touch-down.
  int64_t touchdown_start_us = 0;
  int64_t touchdown_end_us = 0;
  double touchdown_fraction = 0;  // of body weight on the floor, at most
  double touchdown_ramp_s = kTouchdownRampS;
  bool arms_used = false;  // for balance
};

// Where one moment falls in the set.
struct Phase {
  double depth = 0;      // 0 standing .. 1 deepest
  RepShape shape;        // of the repetition under way (all zero when standing)
  double touchdown = 0;  // share of body weight the floor takes, 0..1
};

// Everything the sensors and the truth need at one instant.
struct Pose {
  // Segment to world, per IMU; the identity when standing nominally, so that
  // each segment's frame is the RECORDING_FORMAT.md mounting frame.
  std::array<Mat3, kImuCount> segment;
  std::array<Vec3, kImuCount> imu_point;  // where each IMU is strapped
  Vec3 hip, knee;  // stance leg joint centres; the ankle is fixed
  Vec3 free_hip;   // the free foot hangs below it
  Vec3 com;        // whole body
};

// Raised cosine from 0 to 1 over s in [0, 1]: zero slope at both ends, but
// not zero curvature. Fine for the free foot's load, an outside force that
// may change quickly; not for the body's own motion (see MinimumJerk).
double RaisedCosine(double s) {
  return 0.5 * (1 - std::cos(kPi * std::clamp(s, 0.0, 1.0)));
}

// Minimum-jerk path from 0 to 1 over s in [0, 1] (Flash and Hogan, J
// Neurosci 1985: smooth voluntary movements follow it closely): zero speed
// and zero acceleration at both ends. The body's lowering, hold and rising
// are joined with it, so its acceleration, and with it the plate's force,
// is continuous through every join; a raised cosine's would step there by
// up to an eighth of body weight, which looks like a foot landing.
double MinimumJerk(double s) {
  s = std::clamp(s, 0.0, 1.0);
  // Rounding can take the polynomial a hair past 1 near s = 1, and a depth
  // below 0 would make the drop's fractional power NaN.
  return std::min(1.0, s * s * s * (10 + s * (-15 + 6 * s)));
}

// Bisection for the x in [lo, hi] where the monotone f crosses target;
// the nearer bound when it does not.
template <typename F>
double Solve(F f, double target, double lo, double hi) {
  const double f_lo = f(lo), f_hi = f(hi);
  const bool rising = f_hi > f_lo;
  if ((f_lo - target) * (rising ? 1 : -1) >= 0) return lo;
  if ((f_hi - target) * (rising ? 1 : -1) <= 0) return hi;
  for (int i = 0; i < kBisections; ++i) {
    const double mid = 0.5 * (lo + hi);
    if ((f(mid) < target) == rising) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return 0.5 * (lo + hi);
}

// The body as a function of time, in seconds since the simulator's first
// sample. World frame: x right, y forward, z up; origin where the sacral IMU
// is when standing nominally (without sway).
//
// Every angle and the pelvis's horizontal path are prescribed, scaled by the
// depth of the repetition (a minimum-jerk path): pelvic obliquity, forward tilt
// and turning at the sacral IMU, the sacrum moving back (the hips sit back)
// and sideways (with the drop), the knee's flexion and its turn, the trunk's
// lean and flexion. The stance foot stays on the step and the shank and
// thigh are rigid, so the knee's flexion fixes the ankle-hip distance (law
// of cosines) and with it the hip's height: the pelvis's lowering is derived
// from the knee flexion, never chosen apart from it. Prescribing the
// lowering instead would make the nearly straight knee of the first
// centimetres snap into flexion. com_lowering_m is honoured through the
// leg's other freedom, how far the hips sit back, chosen once per patient so
// that the mean rep lowers the sacrum by com_lowering_m. The knee lies in a
// plane through the ankle-hip line whose turn about it is the knee's medial
// collapse. The trunk pivots at L5/S1.
class Kinematics {
 public:
  Kinematics(const PatientProfile& profile, int64_t start_us, uint64_t seed)
      : profile_(profile),
        start_us_(start_us),
        free_side_x_(FreeSideX(profile.stance_side)),
        height_(profile.body_height_m),
        shank_m_(kShankPerHeight * height_),
        thigh_m_(kThighPerHeight * height_) {
    std::mt19937_64 rng = MakeRng(seed, Stream::kBody);
    roll_ = Sway(rng, kRollSwayDeg);
    tilt_ = Sway(rng, kTiltSwayDeg);
    heading_ = Sway(rng, kHeadingSwayDeg);
    x_ = Sway(rng, kHorizontalSwayM);
    y_ = Sway(rng, kHorizontalSwayM);
    knee_sway_ = Sway(rng, kKneeSwayDeg);
    cop_x_ = Sway(rng, profile.cop_sway_mm);
    cop_y_ = Sway(rng, kCopSwayForwardRatio * profile.cop_sway_mm);
    trunk_roll_ = Sway(rng, kTrunkRollSwayDeg);
    trunk_tilt_ = Sway(rng, kTrunkTiltSwayDeg);
    trunk_heading_ = Sway(rng, kTrunkHeadingSwayDeg);
    std::mt19937_64 arm = MakeRng(seed, Stream::kArmSway);
    arm_sway_x_ = Sway(arm, kArmSwayDeg);
    arm_sway_y_ = Sway(arm, kArmSwayDeg);
    PlaceStanceFoot();
    FitSitBack();
  }

  double Seconds(int64_t t_us) const { return (t_us - start_us_) * 1e-6; }
  void SetReps(std::vector<RepPlan> reps) { reps_ = std::move(reps); }
  void SetCalibration(std::optional<RepPlan> movement) {
    calibration_ = std::move(movement);
  }
  const std::vector<RepPlan>& reps() const { return reps_; }
  double sit_back_m() const { return sit_back_m_; }

  Pose PoseAt(double t) const { return PoseOf(t, PhaseAt(t), true); }

  Phase PhaseAt(double t) const {
    if (calibration_ && t > Seconds(calibration_->touchdown_start_us) &&
        t < Seconds(calibration_->touchdown_end_us)) {
      return PhaseOf(*calibration_, t);
    }
    const auto it = std::upper_bound(
        reps_.begin(), reps_.end(), t,
        [this](double v, const RepPlan& r) { return v < Seconds(r.start_us); });
    if (it == reps_.begin()) return {};
    const RepPlan& r = *(it - 1);
    if (t >= Seconds(r.end_us)) return {};
    return PhaseOf(r, t);
  }

  Phase PhaseOf(const RepPlan& r, double t) const {
    Phase ph;
    if (t >= Seconds(r.start_us) && t < Seconds(r.end_us)) {
      ph.shape = r.shape;
      ph.depth = 1;
      if (t < Seconds(r.bottom_us)) {
        ph.depth = MinimumJerk((t - Seconds(r.start_us)) /
                               (Seconds(r.bottom_us) - Seconds(r.start_us)));
      } else if (t > Seconds(r.rise_us)) {
        ph.depth = 1 - MinimumJerk((t - Seconds(r.rise_us)) /
                                   (Seconds(r.end_us) - Seconds(r.rise_us)));
      }
    }
    if (r.touchdown_end_us > r.touchdown_start_us) {
      const double on = Seconds(r.touchdown_start_us);
      const double off = Seconds(r.touchdown_end_us);
      if (t > on && t < off) {
        ph.touchdown = r.touchdown_fraction *
                       std::min(RaisedCosine((t - on) / r.touchdown_ramp_s),
                                RaisedCosine((off - t) / r.touchdown_ramp_s));
      }
    }
    return ph;
  }

  Pose PoseOf(double t, const Phase& ph, bool sway) const {
    const double s = sway ? 1 : 0;
    const RepShape& shape = ph.shape;
    const double drop = shape.drop_deg * std::pow(ph.depth, kDropDepthExponent);
    const double pelvis_heading = shape.heading_deg * ph.depth;
    const double tilt = ph.depth * profile_.pelvic_forward_tilt_deg;
    // Rz(heading) Ry(roll) Rx(-forward tilt): in this order the
    // mediolateral axis's vertical component is -sin(roll) whatever the tilt
    // and heading, so roll alone sets the obliquity (and the trunk's lean).
    const Mat3 pelvis =
        Rotation(pelvis_heading + s * heading_.At(t),
                 free_side_x_ * drop + s * roll_.At(t), tilt + s * tilt_.At(t));
    const double standing_flexion = profile_.standing_knee_flexion_deg;
    const double knee_flexion =
        standing_flexion +
        (shape.knee_flexion_deg - standing_flexion) * ph.depth +
        s * knee_sway_.At(t);
    // The hip is where the leg reaches, straight above its horizontal place.
    const Vec3 hip_offset = pelvis * HipOffset(-free_side_x_);
    Vec3 sacrum{s * x_.At(t) + free_side_x_ * kLateralShiftPerDropM * drop,
                s * y_.At(t) - shape.sit_back_m * ph.depth, 0};
    Vec3 hip = sacrum + hip_offset;
    const double reach = Reach(knee_flexion);
    const double dx = hip.x - ankle_.x, dy = hip.y - ankle_.y;
    hip.z =
        ankle_.z + std::sqrt(std::max(0.0, reach * reach - dx * dx - dy * dy));
    sacrum.z = hip.z - hip_offset.z;
    const double trunk_heading =
        kTrunkHeadingShare * pelvis_heading + s * trunk_heading_.At(t);
    const Mat3 trunk = Rotation(
        trunk_heading,
        free_side_x_ * shape.trunk_lean_deg * ph.depth + s * trunk_roll_.At(t),
        tilt + kTrunkFlexionOverPelvisDeg * ph.depth + s * trunk_tilt_.At(t));
    const Vec3 lumbosacral =
        sacrum + pelvis * Vec3{0, kLumbosacralForwardPerHeight * height_,
                               kLumbosacralAbovePerHeight * height_};

    const Vec3 free_hip = sacrum + pelvis * HipOffset(free_side_x_);
    const Leg leg = LegFor(hip, shape.knee_turn_deg * ph.depth);

    Pose pose;

    pose.segment[kSacrumImu] = pelvis;
    pose.segment[kSternumImu] = trunk;
    pose.segment[kThighImu] = leg.thigh * thigh_standing_inverse_;
    pose.segment[kShankImu] = leg.shank * shank_standing_inverse_;
    pose.imu_point[kSacrumImu] = sacrum;
    pose.imu_point[kSternumImu] =
        lumbosacral + trunk * Vec3{0, kSternumForwardPerHeight * height_,
                                   kSternumAbovePerHeight * height_};
    const Vec3 lateral = -free_side_x_ * leg.thigh.Column(0);
    pose.imu_point[kThighImu] =
        leg.knee + kThighImuAlong * (hip - leg.knee) + kThighImuOutM * lateral;
    pose.imu_point[kShankImu] =
        ankle_ + kShankImuAlong * (leg.knee - ankle_) + kShankImuOutM * lateral;
    // The arm hangs from the shoulder plumb, whatever the trunk's tilt or
    // lean, turning only with the trunk's heading; lifted, it turns about
    // the horizontal axis square to the direction it lifts toward.
    const Vec3 shoulder =
        lumbosacral +
        trunk * Vec3{free_side_x_ * kShoulderOutPerHeight * height_, 0,
                     kShoulderAbovePerHeight * height_};
    const double lift = DegToRad(shape.arm_elevation_deg * ph.depth);
    const double toward = DegToRad(shape.arm_direction_deg);
    const Vec3 lift_axis{std::sin(toward), -free_side_x_ * std::cos(toward), 0};
    const Vec3 sway_axis{DegToRad(s * arm_sway_x_.At(t)),
                         DegToRad(s * arm_sway_y_.At(t)), 0};
    pose.segment[kWristImu] =
        RotZ(DegToRad(trunk_heading)) *
        ToMatrix(FromRotationVector(lift * lift_axis + sway_axis));
    pose.imu_point[kWristImu] =
        shoulder - kWristImuFromShoulderPerHeight * height_ *
                       pose.segment[kWristImu].Column(2);
    pose.hip = hip;
    pose.knee = leg.knee;
    pose.free_hip = free_hip;

    const Vec3 pelvis_com =
        sacrum + pelvis * Vec3{0, kHipForwardPerHeight * height_,
                               -0.5 * kHipBelowPerHeight * height_};
    const Vec3 upper_body_com =
        lumbosacral + trunk * Vec3{0, kUpperBodyComForwardPerHeight * height_,
                                   kUpperBodyComAbovePerHeight * height_};
    pose.com =
        kFootMass * ankle_ +
        kShankMass * (leg.knee + kShankComFromKnee * (ankle_ - leg.knee)) +
        kThighMass * (hip + kThighComFromHip * (leg.knee - hip)) +
        kPelvisMass * pelvis_com + kUpperBodyMass * upper_body_com +
        kFreeLegMass *
            (free_hip - Vec3{0, 0, kFreeLegComBelowHipPerHeight * height_});
    return pose;
  }

  // Truth quantities, exactly as RECORDING_FORMAT.md defines them. The
  // nominal standing posture has a level pelvis and trunk.
  double PelvicDropDeg(const Pose& pose) const {
    return -free_side_x_ *
           RadToDeg(Elevation(pose.segment[kSacrumImu].Column(0)));
  }
  double TrunkLeanDeg(const Pose& pose) const {
    return -free_side_x_ *
           RadToDeg(Elevation(pose.segment[kSternumImu].Column(0)));
  }
  double KneeFlexionDeg(const Pose& pose) const {
    const Vec3 shank = Normalized(pose.knee - ankle_);
    const Vec3 thigh = Normalized(pose.hip - pose.knee);
    return RadToDeg(std::acos(std::clamp(Dot(shank, thigh), -1.0, 1.0)));
  }
  double KneeValgusDeg(const Pose& pose) const {
    return FrontalKneeAngleDeg(pose) - standing_frontal_deg_;
  }
  // The forearm's angle from plumb, where it hangs standing nominally.
  double ArmElevationDeg(const Pose& pose) const {
    return RadToDeg(
        std::acos(std::clamp(pose.segment[kWristImu].Column(2).z, -1.0, 1.0)));
  }

  // Centre of pressure on the plate (x, y) in millimetres, origin under
  // the ankle, for the body in `pose` accelerating at `accel` with the share
  // `on_floor` of the ground's vertical force under the free foot. The
  // ground force passes through the centre of mass (no whole-body angular
  // momentum); the free foot's share acts straight below its hip, so the
  // plate's own COP moves away from it by the balance of moments. On top
  // come the stance foot's balance corrections, which grow at depth where
  // balance is hardest.
  std::pair<double, double> CopMm(double t, double depth, const Pose& pose,
                                  const Vec3& accel, double on_floor) const {
    const double lever = (pose.com.z - plate_z_) / (kGravity + accel.z);
    const double x = pose.com.x - lever * accel.x;
    const double y = pose.com.y - lever * accel.y;
    const double away = on_floor / (1 - std::min(on_floor, 0.99));
    const double sway_gain = 1 + depth;
    return {1000 * (x + away * (x - pose.free_hip.x) - ankle_.x) +
                sway_gain * cop_x_.At(t),
            1000 * (y + away * (y - pose.free_hip.y) - ankle_.y) +
                sway_gain * cop_y_.At(t)};
  }

  // Fits a planned rep's knee turn so that at its deepest point the knee
  // has the planned valgus.
  void FitKneeTurn(RepPlan* rep) const {
    const double t = Seconds(rep->bottom_us);
    Phase ph;
    ph.depth = 1;
    ph.shape = rep->shape;
    ph.shape.knee_turn_deg = Solve(
        [&](double turn) {
          Phase trial = ph;
          trial.shape.knee_turn_deg = turn;
          return KneeValgusDeg(PoseOf(t, trial, true));
        },
        rep->knee_valgus_deg, -kMaxKneeTurnDeg, kMaxKneeTurnDeg);
    rep->shape = ph.shape;
  }

 private:
  struct Leg {
    Vec3 knee;
    Mat3 thigh, shank;  // x: the knee's flexion axis, z: along the segment
  };

  static Mat3 Rotation(double heading_deg, double roll_deg, double tilt_deg) {
    return RotZ(DegToRad(heading_deg)) * RotY(DegToRad(roll_deg)) *
           RotX(-DegToRad(tilt_deg));
  }

  // Ankle-hip distance for a knee flexion.
  double Reach(double knee_flexion_deg) const {
    return std::sqrt(shank_m_ * shank_m_ + thigh_m_ * thigh_m_ +
                     2 * shank_m_ * thigh_m_ *
                         std::cos(DegToRad(knee_flexion_deg)));
  }

  Vec3 HipOffset(double side_x) const {
    return {side_x * kHipHalfWidthPerHeight * height_,
            kHipForwardPerHeight * height_, -kHipBelowPerHeight * height_};
  }

  // The stance leg for the hip at `hip`, its knee turned medially by
  // knee_turn_deg about the ankle-hip line.
  Leg LegFor(const Vec3& hip, double knee_turn_deg) const {
    const Vec3 ankle_to_hip = hip - ankle_;
    // A leg asked to reach further than it can stays just short of straight.
    const double d =
        std::clamp(Norm(ankle_to_hip), std::abs(shank_m_ - thigh_m_) + 1e-6,
                   shank_m_ + thigh_m_ - 1e-6);
    const Vec3 u = Normalized(ankle_to_hip);
    const double cos_ankle =
        std::clamp((shank_m_ * shank_m_ + d * d - thigh_m_ * thigh_m_) /
                       (2 * shank_m_ * d),
                   -1.0, 1.0);
    const double sin_ankle = std::sqrt(1 - cos_ankle * cos_ankle);
    // The knee points forward when standing; turning it about the ankle-hip
    // line (up) by a positive angle moves it toward -x, so the sign makes
    // positive medial, toward the free side.
    const double turn = -free_side_x_ * DegToRad(knee_turn_deg);
    const Vec3 forward{0, 1, 0};
    Vec3 n = std::cos(turn) * forward + std::sin(turn) * Cross(u, forward);
    n = Normalized(n - Dot(n, u) * u);
    Leg leg;
    leg.knee = ankle_ + shank_m_ * (cos_ankle * u + sin_ankle * n);
    const Vec3 axis = Normalized(Cross(n, u));
    const Vec3 thigh_z = Normalized(hip - leg.knee);
    const Vec3 shank_z = Normalized(leg.knee - ankle_);
    leg.thigh = FromColumns(axis, Cross(thigh_z, axis), thigh_z);
    leg.shank = FromColumns(axis, Cross(shank_z, axis), shank_z);
    return leg;
  }

  // Frontal-plane (x-z) angle between shank and thigh, + when the knee lies
  // medial of the ankle-hip line.
  double FrontalKneeAngleDeg(const Pose& pose) const {
    const Vec3 shank = pose.knee - ankle_;
    const Vec3 thigh = pose.hip - pose.knee;
    return free_side_x_ *
           RadToDeg(std::atan2(shank.x * thigh.z - shank.z * thigh.x,
                               shank.x * thigh.x + shank.z * thigh.z));
  }

  // Standing on one leg the centre of mass is over the stance foot: the
  // ankle goes under it, at the distance from the hip that the standing
  // knee flexion gives. The centre of mass depends a little on where the
  // leg is, hence the iteration (each step shrinks the error some 15-fold).
  void PlaceStanceFoot() {
    const double reach = Reach(profile_.standing_knee_flexion_deg);
    const Vec3 hip = HipOffset(-free_side_x_);
    ankle_ = hip - Vec3{0, 0, reach};
    for (int i = 0; i < 30; ++i) {
      const Vec3 com = PoseOf(0, Phase{}, false).com;
      ankle_.x = com.x;
      ankle_.y = com.y - kComAheadOfAnkleM;
      const double dx = hip.x - ankle_.x, dy = hip.y - ankle_.y;
      ankle_.z = hip.z - std::sqrt(reach * reach - dx * dx - dy * dy);
    }
    plate_z_ = ankle_.z - kAnkleHeightPerHeight * height_;
    // The segments' frames are their geometric frames turned so that
    // standing nominally they are the mounting frame.
    const Leg leg = LegFor(hip, 0);
    thigh_standing_inverse_ = Transpose(leg.thigh);
    shank_standing_inverse_ = Transpose(leg.shank);
    standing_frontal_deg_ = FrontalKneeAngleDeg(PoseOf(0, Phase{}, false));
  }

  // How far the hips sit back: so that the mean rep lowers the sacrum by
  // com_lowering_m. With the knee's flexion fixed, sitting back lowers the
  // hip once it is behind the ankle; before that point it raises it, so the
  // search starts there. A lowering that the mean knee flexion cannot give
  // is met as nearly as the bounds allow: the knee flexion wins.
  void FitSitBack() {
    Phase ph;
    ph.depth = 1;
    ph.shape.drop_deg = profile_.pelvic_drop_mean_deg;
    ph.shape.knee_flexion_deg = profile_.knee_flexion_mean_deg;
    ph.shape.trunk_lean_deg = profile_.trunk_lean_mean_deg;
    const Pose forward = PoseOf(0, ph, false);
    const double over_ankle = std::max(0.0, forward.hip.y - ankle_.y);
    sit_back_m_ = Solve(
        [&](double sit_back) {
          Phase trial = ph;
          trial.shape.sit_back_m = sit_back;
          return -PoseOf(0, trial, false).imu_point[kSacrumImu].z;
        },
        profile_.com_lowering_m, over_ankle, over_ankle + kMaxSitBackM);
  }

  const PatientProfile profile_;
  const int64_t start_us_;
  const double free_side_x_;  // +1 when the free side is the right (+x)
  const double height_;
  const double shank_m_, thigh_m_;
  Vec3 ankle_;  // stance ankle joint centre, fixed
  double plate_z_ = 0;
  Mat3 thigh_standing_inverse_ = Mat3::Identity();
  Mat3 shank_standing_inverse_ = Mat3::Identity();
  double standing_frontal_deg_ = 0;
  double sit_back_m_ = 0;
  std::vector<RepPlan> reps_;
  std::optional<RepPlan> calibration_;
  Sway roll_, tilt_, heading_, x_, y_, knee_sway_, cop_x_, cop_y_;
  Sway trunk_roll_, trunk_tilt_, trunk_heading_;
  Sway arm_sway_x_, arm_sway_y_;  // deg, about the world's x and y
};

int64_t Micros(double seconds) { return std::llround(seconds * 1e6); }

// Sensor-to-segment rotation: a tilt about a random horizontal axis, then a
// small heading error, fixed for the simulated patient.
Mat3 RandomMount(const PatientProfile& profile, std::mt19937_64& rng) {
  const double axis_angle = Uniform(rng, 0, 2 * kPi);
  const double tilt = DegToRad(Uniform(rng, 0, profile.mount_tilt_max_deg));
  const double heading = DegToRad(Uniform(rng, -profile.mount_heading_max_deg,
                                          profile.mount_heading_max_deg));
  const Vec3 axis{std::cos(axis_angle), std::sin(axis_angle), 0};
  return RotZ(heading) * ToMatrix(FromRotationVector(axis * tilt));
}

// The pelvis's draws come from `rng` in the order they always did; the legs,
// trunk and free foot draw from `limbs`.
std::vector<RepPlan> PlanSet(const PatientProfile& p, int64_t first_start_us,
                             std::mt19937_64& rng, std::mt19937_64& limbs) {
  std::vector<RepPlan> reps;
  int64_t t = first_start_us;
  const double v = p.tempo_variation;
  for (int i = 0; i < p.repetitions; ++i) {
    RepPlan r;
    r.start_us = t;
    r.bottom_us = r.start_us + Micros(p.lower_s * Uniform(rng, 1 - v, 1 + v));
    r.rise_us = r.bottom_us + Micros(p.hold_s * Uniform(rng, 1 - kHoldVariation,
                                                        1 + kHoldVariation));
    r.end_us = r.rise_us + Micros(p.rise_s * Uniform(rng, 1 - v, 1 + v));
    r.shape.drop_deg =
        Gaussian(rng, p.pelvic_drop_mean_deg, p.pelvic_drop_sd_deg);
    r.shape.heading_deg =
        Uniform(rng, -kHeadingAtDepthMaxDeg, kHeadingAtDepthMaxDeg);
    t = r.end_us + Micros(p.pause_s * Uniform(rng, 1 - v, 1 + v));

    r.shape.knee_flexion_deg =
        Normal(limbs, p.knee_flexion_mean_deg, p.knee_flexion_sd_deg);
    r.knee_valgus_deg =
        Normal(limbs, p.knee_valgus_mean_deg, p.knee_valgus_sd_deg);
    r.shape.trunk_lean_deg =
        Normal(limbs, p.trunk_lean_mean_deg, p.trunk_lean_sd_deg);
    const bool touches = Uniform(limbs, 0, 1) < p.touchdown_probability;
    const double length = Uniform(limbs, kTouchdownMinS, kTouchdownMaxS);
    const double centre =
        0.5 * (r.bottom_us + r.rise_us) * 1e-6 +
        Uniform(limbs, -kTouchdownCentreJitterS, kTouchdownCentreJitterS);
    if (touches) {
      r.touchdown_start_us = Micros(centre - length / 2);
      r.touchdown_end_us = Micros(centre + length / 2);
      r.touchdown_fraction = p.touchdown_weight_fraction;
    }
    reps.push_back(r);
  }
  return reps;
}

// Which reps use the arms for balance, and how far the arm goes in each.
// Its own stream: the other draws stay as they were before the arm.
void PlanArms(const PatientProfile& p, std::mt19937_64& rng,
              std::vector<RepPlan>* reps) {
  for (RepPlan& r : *reps) {
    r.arms_used = Uniform(rng, 0, 1) < p.arms_use_probability;
    const double used = Uniform(rng, p.arm_use_min_deg, p.arm_use_max_deg);
    const double used_toward =
        Uniform(rng, kArmUseDirectionMinDeg, kArmUseDirectionMaxDeg);
    const double relaxed = Uniform(rng, 0, p.relaxed_arm_max_deg);
    const double relaxed_toward = Uniform(rng, -180, 180);
    r.shape.arm_elevation_deg = r.arms_used ? used : relaxed;
    r.shape.arm_direction_deg = r.arms_used ? used_toward : relaxed_toward;
  }
}

// The prompted heading-calibration movement: the free foot goes down beside
// the stance foot and takes half the weight, both knees bend once, slowly,
// and the free foot lifts again. Every segment turns about its own
// mediolateral axis only (no drop, turn, valgus or lean), whatever the
// patient's step-down faults: with both feet down the pelvis stays level.
RepPlan PlanCalibrationMovement(const PatientProfile& p, int64_t foot_down_us) {
  constexpr double kFootRampS = 0.3;
  constexpr double kHoldS = 0.2;
  RepPlan r;
  r.touchdown_start_us = foot_down_us;
  r.start_us = foot_down_us + Micros(2 * kFootRampS);
  r.bottom_us = r.start_us + Micros(p.calibration_lower_s);
  r.rise_us = r.bottom_us + Micros(kHoldS);
  r.end_us = r.rise_us + Micros(p.calibration_lower_s);
  r.touchdown_end_us = r.end_us + Micros(2 * kFootRampS);
  r.touchdown_fraction = 0.5;
  r.touchdown_ramp_s = kFootRampS;
  r.shape.knee_flexion_deg = p.calibration_knee_flexion_deg;
  // Hips straight down, knees forward: the shank turns as well as the thigh.
  r.shape.sit_back_m = 0;
  return r;
}

// Extremes over a repetition.
struct Extremes {
  void Add(double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  // Of the largest and the most negative value, the one with larger
  // magnitude (so a rep that hikes instead of dropping reads negative).
  double Peak() const { return std::abs(hi) >= std::abs(lo) ? hi : lo; }
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
};

TruthRepetition TruthOf(const Kinematics& k, const RepPlan& rep, int number,
                        bool wrist_imu) {
  Extremes drop, lean, flexion, valgus, arm;
  for (int64_t t = rep.start_us;; t = std::min(t + kTruthGridUs, rep.end_us)) {
    const Pose pose = k.PoseAt(k.Seconds(t));
    drop.Add(k.PelvicDropDeg(pose));
    lean.Add(k.TrunkLeanDeg(pose));
    flexion.Add(k.KneeFlexionDeg(pose));
    valgus.Add(k.KneeValgusDeg(pose));
    arm.Add(k.ArmElevationDeg(pose));
    if (t == rep.end_us) break;
  }
  TruthRepetition truth;
  truth.rep = number;
  truth.start_us = rep.start_us;
  truth.end_us = rep.end_us;
  truth.peak_pelvic_drop_deg = drop.Peak();
  truth.peak_trunk_lean_deg = lean.Peak();
  truth.knee_flexion_deg = flexion.hi;
  truth.knee_valgus_deg = valgus.Peak();
  if (wrist_imu) {
    truth.arms_used = rep.arms_used;
    truth.peak_arm_elevation_deg = arm.hi;
  }
  return truth;
}

struct CopRange {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  bool done = false;
};

// The body at one force sample time, kept for its neighbours' central
// differences.
struct BodySample {
  int64_t t_us = std::numeric_limits<int64_t>::min();
  Pose pose;
  Phase phase;
};

}  // namespace

struct StepDownSimulator::State {
  State(PatientProfile p, uint64_t s, int64_t start)
      : profile(std::move(p)),
        seed(s),
        start_us(start),
        kinematics(profile, start, s),
        force_rng(MakeRng(s, Stream::kForce)),
        generated_until_us(start - 1) {
    // The sacral IMU keeps the streams it had before the other IMUs existed.
    for (int i = 0; i < kImuCount; ++i) {
      imu_rng[i] = MakeRng(s, Stream::kImu, i);
      std::mt19937_64 body = MakeRng(s, Stream::kBody, 1 + i);
      mount[i] = RandomMount(profile, body);
      const double b = profile.gyro_bias_radps;
      gyro_bias[i] = {Uniform(body, -b, b), Uniform(body, -b, b),
                      Uniform(body, -b, b)};
    }
  }

  int64_t SampleTime(int64_t index, double rate_hz) const {
    return start_us + Micros(static_cast<double>(index) / rate_hz);
  }

  void SampleImus(int64_t t_us, SimulatedSamples* out);
  ForceSample SampleForce(int64_t t_us);
  const BodySample& BodyAt(int64_t t_us);
  void FinishCopTruth();

  const PatientProfile profile;
  const uint64_t seed;
  const int64_t start_us;
  Kinematics kinematics;
  std::array<std::mt19937_64, kImuCount> imu_rng;
  std::mt19937_64 force_rng;
  std::array<Mat3, kImuCount> mount;  // sensor to segment
  std::array<Vec3, kImuCount> gyro_bias;
  std::array<BodySample, 3> body_cache;
  int body_cache_next = 0;
  int sets_begun = 0;
  std::vector<TruthRepetition> truth;
  std::vector<CopRange> cop_ranges;
  std::optional<int64_t> set_end_us;
  int64_t imu_count = 0;
  int64_t force_count = 0;
  int64_t generated_until_us;
};

void StepDownSimulator::State::SampleImus(int64_t t_us, SimulatedSamples* out) {
  constexpr double h = kDiffStepUs * 1e-6;
  const Pose before = kinematics.PoseAt(kinematics.Seconds(t_us - kDiffStepUs));
  const Pose now = kinematics.PoseAt(kinematics.Seconds(t_us));
  const Pose after = kinematics.PoseAt(kinematics.Seconds(t_us + kDiffStepUs));
  const double dt = 1.0 / profile.imu_rate_hz;
  std::array<std::vector<ImuSample>*, kImuCount> streams = {
      &out->sacrum, &out->sternum, &out->thigh, &out->shank, &out->wrist};
  for (int i = 0; i < kImuCount; ++i) {
    if (i == kWristImu && !profile.wrist_imu) continue;
    // The mounting point's own acceleration, so a segment's turning (the
    // lever arm from its joint) is in it.
    const Vec3 accel_world =
        (after.imu_point[i] - 2.0 * now.imu_point[i] + before.imu_point[i]) /
        (h * h);
    const Mat3 sensor_to_world = now.segment[i] * mount[i];
    const Vec3 specific_force =
        Transpose(sensor_to_world) * (accel_world + Vec3{0, 0, kGravity});
    // The rotation vector of R(t-h)^T R(t+h) over its duration is the
    // segment's rate in its own frame; R_s = R M, so the sensor's is M^T
    // times it.
    const Mat3 relative = Transpose(before.segment[i]) * after.segment[i];
    const Vec3 rate =
        Transpose(mount[i]) * ToRotationVector(FromMatrix(relative)) / (2 * h);
    std::mt19937_64& rng = imu_rng[i];
    gyro_bias[i] +=
        GaussianVec(rng, profile.gyro_bias_walk_radps_per_s * std::sqrt(dt));
    const Vec3 accel =
        specific_force + GaussianVec(rng, profile.accel_noise_mps2);
    const Vec3 gyro =
        rate + gyro_bias[i] + GaussianVec(rng, profile.gyro_noise_radps);
    streams[i]->push_back(
        {t_us, accel.x, accel.y, accel.z, gyro.x, gyro.y, gyro.z});
  }
}

const BodySample& StepDownSimulator::State::BodyAt(int64_t t_us) {
  for (const BodySample& b : body_cache) {
    if (b.t_us == t_us) return b;
  }
  BodySample& slot = body_cache[body_cache_next];
  body_cache_next = (body_cache_next + 1) % body_cache.size();
  const double t = kinematics.Seconds(t_us);
  slot.t_us = t_us;
  slot.phase = kinematics.PhaseAt(t);
  slot.pose = kinematics.PoseOf(t, slot.phase, true);
  return slot;
}

ForceSample StepDownSimulator::State::SampleForce(int64_t t_us) {
  constexpr double h = kDiffStepUs * 1e-6;
  const Vec3 com_before = BodyAt(t_us - kDiffStepUs).pose.com;
  const Vec3 com_after = BodyAt(t_us + kDiffStepUs).pose.com;
  const BodySample& now = BodyAt(t_us);
  const Vec3 accel = (com_after - 2.0 * now.pose.com + com_before) / (h * h);
  const double mass = profile.body_mass_kg;
  // The ground's force moves the centre of mass; the floor under the free
  // foot takes its share, the plate the rest.
  const double ground = mass * (kGravity + accel.z);
  const double on_floor = now.phase.touchdown * mass * kGravity;
  const double fz =
      ground - on_floor + Gaussian(force_rng, 0, profile.force_noise_n);
  auto [cop_x, cop_y] =
      kinematics.CopMm(kinematics.Seconds(t_us), now.phase.depth, now.pose,
                       accel, on_floor / ground);
  cop_x += Gaussian(force_rng, 0, kCopNoiseMm);
  cop_y += Gaussian(force_rng, 0, kCopNoiseMm);
  if (fz < kCopMinForceN) {
    cop_x = cop_y = std::numeric_limits<double>::quiet_NaN();
  } else {
    const std::vector<RepPlan>& reps = kinematics.reps();
    for (size_t i = 0; i < reps.size(); ++i) {
      if (t_us < reps[i].start_us || t_us > reps[i].end_us) continue;
      cop_ranges[i].lo = std::min(cop_ranges[i].lo, cop_x);
      cop_ranges[i].hi = std::max(cop_ranges[i].hi, cop_x);
    }
  }
  return {t_us, fz, cop_x, cop_y};
}

// A rep's COP range is known once every force sample of it exists.
void StepDownSimulator::State::FinishCopTruth() {
  const std::vector<RepPlan>& reps = kinematics.reps();
  for (size_t i = 0; i < reps.size(); ++i) {
    CopRange& range = cop_ranges[i];
    if (range.done || reps[i].end_us > generated_until_us) continue;
    range.done = true;
    if (range.hi >= range.lo) truth[i].cop_ml_range_mm = range.hi - range.lo;
  }
}

StepDownSimulator::StepDownSimulator(PatientProfile profile, uint64_t seed,
                                     int64_t start_us)
    : state_(std::make_unique<State>(std::move(profile), seed, start_us)) {}

StepDownSimulator::~StepDownSimulator() = default;

void StepDownSimulator::BeginSet(int64_t t_us) {
  State& s = *state_;
  // One set at a time; a set already under way keeps going.
  if (s.set_end_us.has_value() && !set_finished()) return;
  std::mt19937_64 rng = MakeRng(s.seed, Stream::kSet, s.sets_begun);
  std::mt19937_64 limbs = MakeRng(s.seed, Stream::kLimbs, s.sets_begun);
  std::mt19937_64 arms = MakeRng(s.seed, Stream::kArms, s.sets_begun);
  ++s.sets_begun;
  // Samples already emitted cannot be rewritten: the set starts no earlier.
  const int64_t set_start = std::max(t_us, s.generated_until_us);
  int64_t first_rep_us = set_start + Micros(s.profile.standing_lead_s);
  std::optional<RepPlan> movement;
  if (s.profile.calibration_movement) {
    movement = PlanCalibrationMovement(s.profile, first_rep_us);
    first_rep_us =
        movement->touchdown_end_us + Micros(s.profile.calibration_settle_s);
  }
  s.kinematics.SetCalibration(movement);
  std::vector<RepPlan> reps = PlanSet(s.profile, first_rep_us, rng, limbs);
  PlanArms(s.profile, arms, &reps);
  for (RepPlan& r : reps) {
    r.shape.sit_back_m = s.kinematics.sit_back_m();
    s.kinematics.FitKneeTurn(&r);
  }
  s.kinematics.SetReps(std::move(reps));
  // Cached bodies may lie a step into the new set.
  s.body_cache = {};
  s.truth.clear();
  const std::vector<RepPlan>& planned = s.kinematics.reps();
  s.cop_ranges.assign(planned.size(), CopRange{});
  for (size_t i = 0; i < planned.size(); ++i) {
    s.truth.push_back(TruthOf(s.kinematics, planned[i], static_cast<int>(i) + 1,
                              s.profile.wrist_imu));
  }
  const int64_t last_end =
      planned.empty() ? first_rep_us : planned.back().end_us;
  s.set_end_us = last_end + Micros(s.profile.standing_tail_s);
}

bool StepDownSimulator::set_finished() const {
  return state_->set_end_us.has_value() &&
         state_->generated_until_us >= *state_->set_end_us;
}

void StepDownSimulator::GenerateUntil(int64_t t_us, SimulatedSamples* out) {
  State& s = *state_;
  if (t_us <= s.generated_until_us) return;
  for (int64_t t;
       (t = s.SampleTime(s.imu_count, s.profile.imu_rate_hz)) <= t_us;
       ++s.imu_count) {
    s.SampleImus(t, out);
  }
  for (int64_t t;
       (t = s.SampleTime(s.force_count, s.profile.force_rate_hz)) <= t_us;
       ++s.force_count) {
    out->force.push_back(s.SampleForce(t));
  }
  s.generated_until_us = t_us;
  s.FinishCopTruth();
}

const std::vector<TruthRepetition>& StepDownSimulator::truth() const {
  return state_->truth;
}

const PatientProfile& StepDownSimulator::profile() const {
  return state_->profile;
}

absl::StatusOr<PatientProfile> ProfileByName(absl::string_view name) {
  PatientProfile p;
  p.name = std::string(name);
  if (name == "level") {
    p.pelvic_drop_mean_deg = 1.0;
    p.pelvic_drop_sd_deg = 0.6;
  } else if (name == "moderate") {
    p.pelvic_drop_mean_deg = 5.5;
    p.pelvic_drop_sd_deg = 1.2;
    p.knee_flexion_mean_deg = 64.5;
    p.trunk_lean_mean_deg = 2;
    p.trunk_lean_sd_deg = 1.5;
    p.knee_valgus_mean_deg = 5;
    p.knee_valgus_sd_deg = 2;
    p.cop_sway_mm = 3;
    p.touchdown_probability = 0.1;
    p.touchdown_weight_fraction = 0.1;
    p.arms_use_probability = 0.15;
  } else if (name == "trendelenburg") {
    p.pelvic_drop_mean_deg = 11;
    p.pelvic_drop_sd_deg = 1.5;
    p.knee_flexion_mean_deg = 62;
    // The trunk goes partly with the dropping pelvis.
    p.trunk_lean_mean_deg = 4;
    p.trunk_lean_sd_deg = 2;
    p.knee_valgus_mean_deg = 8;
    p.knee_valgus_sd_deg = 2.5;
    p.cop_sway_mm = 4;
    p.touchdown_probability = 0.2;
    p.touchdown_weight_fraction = 0.15;
    // Balance is hard: the arms go out in about half the reps.
    p.arms_use_probability = 0.5;
  } else if (name == "valgus") {
    p.pelvic_drop_mean_deg = 2;
    p.pelvic_drop_sd_deg = 1;
    p.knee_valgus_mean_deg = 12;
    p.knee_valgus_sd_deg = 3;
    p.knee_flexion_mean_deg = 68;
    p.com_lowering_m = 0.13;
  } else if (name == "touchdown") {
    p.pelvic_drop_mean_deg = 4;
    p.pelvic_drop_sd_deg = 1.5;
    p.knee_valgus_mean_deg = 4;
    p.cop_sway_mm = 4;
    p.knee_flexion_mean_deg = 65;
    p.touchdown_probability = 0.6;
    p.touchdown_weight_fraction = 0.3;
    p.arms_use_probability = 0.3;
  } else if (name == "fast") {
    p.pelvic_drop_mean_deg = 2;
    p.pelvic_drop_sd_deg = 1;
    p.knee_flexion_mean_deg = 48;
    p.knee_flexion_sd_deg = 4;
    p.com_lowering_m = 0.06;
    p.pelvic_forward_tilt_deg = 9;
    p.lower_s = 0.7;
    p.hold_s = 0.1;
    p.rise_s = 0.6;
    p.pause_s = 0.5;
    p.tempo_variation = 0.15;
  } else if (name == "hike") {
    // Hip hiking, the free side pulled up with the trunk over the stance leg.
    p.pelvic_drop_mean_deg = -6;
    p.pelvic_drop_sd_deg = 1.5;
    p.knee_flexion_mean_deg = 68.5;
    p.trunk_lean_mean_deg = -4;
    p.trunk_lean_sd_deg = 1.5;
  } else if (name == "lean") {
    // The compensated pattern: the pelvis kept nearly level by leaning the
    // trunk over the stance leg.
    p.pelvic_drop_mean_deg = 2;
    p.pelvic_drop_sd_deg = 1;
    p.trunk_lean_mean_deg = -9;
    p.trunk_lean_sd_deg = 2;
    p.knee_valgus_mean_deg = 4;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown patient profile '", name,
        "'; valid profiles: ", absl::StrJoin(AllProfileNames(), ", ")));
  }
  return p;
}

std::vector<std::string> ProfileNames() {
  return {"level", "moderate", "trendelenburg"};
}

std::vector<std::string> AllProfileNames() {
  std::vector<std::string> names = ProfileNames();
  for (const char* name : {"valgus", "touchdown", "fast", "hike", "lean"}) {
    names.push_back(name);
  }
  return names;
}

Recording SimulateRecording(const PatientProfile& profile, uint64_t seed) {
  StepDownSimulator sim(profile, seed, 0);
  sim.BeginSet(0);
  SimulatedSamples samples;
  // 10 ms steps: the recording ends at most one step after the tail.
  constexpr int64_t kStepUs = 10'000;
  for (int64_t t = 0; !sim.set_finished(); t += kStepUs) {
    sim.GenerateUntil(t, &samples);
  }
  Recording rec;
  rec.meta.stance_side = profile.stance_side;
  rec.meta.exercise = "lateral_step_down";
  rec.meta.body_mass_kg = profile.body_mass_kg;
  rec.meta.load = "bodyweight";
  rec.meta.calibration_movement = profile.calibration_movement;
  rec.meta.source = absl::StrCat("stephub simulator, profile ", profile.name,
                                 ", seed ", seed);
  rec.force = std::move(samples.force);
  rec.imu[Placement::kSacrum] = std::move(samples.sacrum);
  rec.imu[Placement::kSternum] = std::move(samples.sternum);
  rec.imu[Placement::kThigh] = std::move(samples.thigh);
  rec.imu[Placement::kShank] = std::move(samples.shank);
  if (profile.wrist_imu) rec.imu[Placement::kWrist] = std::move(samples.wrist);
  rec.truth = sim.truth();
  return rec;
}

}  // namespace stephub
