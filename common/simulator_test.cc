// Tests of the step-down simulator: determinism, timing, and that what the
// sensors read follows from the simulated motion and agrees with the truth.
#include "common/simulator.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "common/geometry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stephub {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr double kG = 9.81;
constexpr std::array<Placement, 4> kPlacements = {
    Placement::kSacrum, Placement::kSternum, Placement::kThigh,
    Placement::kShank};

PatientProfile Profile(const std::string& name,
                       StanceSide side = StanceSide::kLeft) {
  PatientProfile p = *ProfileByName(name);
  p.stance_side = side;
  return p;
}

// Sensors strapped exactly square to their segments.
PatientProfile SquareMounts(PatientProfile p) {
  p.mount_tilt_max_deg = 0;
  p.mount_heading_max_deg = 0;
  return p;
}

Vec3 Accel(const ImuSample& s) { return {s.ax_mps2, s.ay_mps2, s.az_mps2}; }
Vec3 Gyro(const ImuSample& s) { return {s.gx_radps, s.gy_radps, s.gz_radps}; }

// Mean accelerometer reading over [from_us, to_us].
Vec3 MeanAccel(const std::vector<ImuSample>& imu, int64_t from_us,
               int64_t to_us) {
  Vec3 sum;
  int n = 0;
  for (const ImuSample& s : imu) {
    if (s.t_us < from_us || s.t_us > to_us) continue;
    sum += Accel(s);
    ++n;
  }
  return sum / n;
}

Vec3 MeanGyro(const std::vector<ImuSample>& imu, int64_t from_us,
              int64_t to_us) {
  Vec3 sum;
  int n = 0;
  for (const ImuSample& s : imu) {
    if (s.t_us < from_us || s.t_us > to_us) continue;
    sum += Gyro(s);
    ++n;
  }
  return sum / n;
}

double AngleDeg(const Vec3& a, const Vec3& b) {
  return RadToDeg(
      std::acos(std::clamp(Dot(Normalized(a), Normalized(b)), -1.0, 1.0)));
}

double AngleDeg(const Quaternion& q) {
  return RadToDeg(Norm(ToRotationVector(q)));
}

bool SameImu(const std::vector<ImuSample>& a, const std::vector<ImuSample>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const ImuSample& x, const ImuSample& y) {
                      return x.t_us == y.t_us && x.ax_mps2 == y.ax_mps2 &&
                             x.ay_mps2 == y.ay_mps2 && x.az_mps2 == y.az_mps2 &&
                             x.gx_radps == y.gx_radps &&
                             x.gy_radps == y.gy_radps &&
                             x.gz_radps == y.gz_radps;
                    });
}

bool SameForce(const std::vector<ForceSample>& a,
               const std::vector<ForceSample>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const ForceSample& x, const ForceSample& y) {
                      return x.t_us == y.t_us && x.fz_n == y.fz_n &&
                             x.cop_x_mm == y.cop_x_mm &&
                             x.cop_y_mm == y.cop_y_mm;
                    });
}

// The sensor's rotation from `from_us` to each later sample up to `to_us`,
// integrated from its gyroscope; `visit(t_us, q)` sees every step.
template <typename Visit>
Quaternion IntegrateGyro(const std::vector<ImuSample>& imu, int64_t from_us,
                         int64_t to_us, Visit visit) {
  Quaternion q;
  for (size_t i = 1; i < imu.size(); ++i) {
    if (imu[i].t_us <= from_us || imu[i].t_us > to_us) continue;
    const double dt = (imu[i].t_us - imu[i - 1].t_us) * 1e-6;
    // Trapezoidal rate: the rotation over the interval to second order.
    const Vec3 w = 0.5 * (Gyro(imu[i - 1]) + Gyro(imu[i]));
    q = Normalized(q * FromRotationVector(w * dt));
    visit(imu[i].t_us, q);
  }
  return q;
}

TEST(Simulator, ProfilesByName) {
  EXPECT_THAT(ProfileNames(),
              ElementsAre("level", "moderate", "trendelenburg"));
  EXPECT_THAT(AllProfileNames(),
              ElementsAre("level", "moderate", "trendelenburg", "valgus",
                          "touchdown", "fast", "hike", "lean"));
  for (const std::string& name : AllProfileNames()) {
    auto p = ProfileByName(name);
    ASSERT_TRUE(p.ok()) << name;
    EXPECT_EQ(p->name, name);
    EXPECT_EQ(p->repetitions, 10);
    EXPECT_EQ(p->stance_side, StanceSide::kLeft);
    const Recording rec = SimulateRecording(*p, 1);
    EXPECT_EQ(rec.truth.size(), 10u) << name;
    EXPECT_EQ(rec.imu.size(), 4u) << name;
  }
  auto bad = ProfileByName("marathon");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("'marathon'; valid profiles: level, moderate, "
                        "trendelenburg, valgus, touchdown, fast, hike, lean"));
}

TEST(Simulator, SameSeedSameRecording) {
  const Recording a = SimulateRecording(Profile("touchdown"), 11);
  const Recording b = SimulateRecording(Profile("touchdown"), 11);
  const Recording c = SimulateRecording(Profile("touchdown"), 12);
  for (Placement placement : kPlacements) {
    EXPECT_TRUE(SameImu(a.imu.at(placement), b.imu.at(placement)))
        << PlacementName(placement);
    EXPECT_FALSE(SameImu(a.imu.at(placement), c.imu.at(placement)))
        << PlacementName(placement);
  }
  EXPECT_TRUE(SameForce(a.force, b.force));
  EXPECT_FALSE(SameForce(a.force, c.force));
  ASSERT_EQ(a.truth.size(), b.truth.size());
  for (size_t i = 0; i < a.truth.size(); ++i) {
    EXPECT_EQ(a.truth[i].start_us, b.truth[i].start_us);
    EXPECT_EQ(a.truth[i].peak_pelvic_drop_deg, b.truth[i].peak_pelvic_drop_deg);
    EXPECT_EQ(a.truth[i].peak_trunk_lean_deg, b.truth[i].peak_trunk_lean_deg);
    EXPECT_EQ(a.truth[i].knee_flexion_deg, b.truth[i].knee_flexion_deg);
    EXPECT_EQ(a.truth[i].knee_valgus_deg, b.truth[i].knee_valgus_deg);
    EXPECT_EQ(a.truth[i].cop_ml_range_mm, b.truth[i].cop_ml_range_mm);
    EXPECT_NE(a.truth[i].knee_flexion_deg, c.truth[i].knee_flexion_deg);
  }
}

TEST(Simulator, OutputDoesNotDependOnHowTimeIsSliced) {
  const PatientProfile p = Profile("touchdown");
  const int64_t start = 5'000'000'000;  // a station's monotonic clock
  StepDownSimulator coarse(p, 4, start), fine(p, 4, start);
  coarse.BeginSet(start + 500'000);
  fine.BeginSet(start + 500'000);
  SimulatedSamples a, b;
  coarse.GenerateUntil(start + 20'000'000, &a);
  for (int64_t t = start; t <= start + 20'000'000; t += 7'777) {
    fine.GenerateUntil(t, &b);
  }
  fine.GenerateUntil(start + 20'000'000, &b);
  EXPECT_TRUE(SameImu(a.sacrum, b.sacrum));
  EXPECT_TRUE(SameImu(a.sternum, b.sternum));
  EXPECT_TRUE(SameImu(a.thigh, b.thigh));
  EXPECT_TRUE(SameImu(a.shank, b.shank));
  EXPECT_TRUE(SameForce(a.force, b.force));
  ASSERT_EQ(coarse.truth().size(), fine.truth().size());
  for (size_t i = 0; i < coarse.truth().size(); ++i) {
    EXPECT_EQ(coarse.truth()[i].cop_ml_range_mm,
              fine.truth()[i].cop_ml_range_mm);
  }
}

TEST(Simulator, SampleTimesFollowTheRates) {
  StepDownSimulator sim(Profile("level"), 1, 1'000);
  SimulatedSamples s;
  sim.GenerateUntil(1'000 + 10'000, &s);  // inclusive end
  ASSERT_EQ(s.sacrum.size(), 3u);
  EXPECT_EQ(s.sacrum[0].t_us, 1'000);  // the first sample is at start_us
  EXPECT_EQ(s.sacrum[2].t_us, 11'000);
  EXPECT_EQ(s.force.size(), 11u);
  sim.GenerateUntil(1'000 + 10'000, &s);  // nothing new
  EXPECT_EQ(s.sacrum.size(), 3u);
  sim.GenerateUntil(1'000 + 1'000'000, &s);
  for (size_t i = 1; i < s.sacrum.size(); ++i) {
    ASSERT_EQ(s.sacrum[i].t_us - s.sacrum[i - 1].t_us, 5'000);
  }
  // Every IMU samples at the same instants.
  for (const auto* other : {&s.sternum, &s.thigh, &s.shank}) {
    ASSERT_EQ(other->size(), s.sacrum.size());
    for (size_t i = 0; i < other->size(); ++i) {
      ASSERT_EQ((*other)[i].t_us, s.sacrum[i].t_us);
    }
  }
  for (size_t i = 1; i < s.force.size(); ++i) {
    ASSERT_EQ(s.force[i].t_us - s.force[i - 1].t_us, 1'000);
  }
}

TEST(Simulator, StandsQuietlyUntilTheSetBegins) {
  StepDownSimulator sim(Profile("trendelenburg"), 2, 0);
  SimulatedSamples s;
  sim.GenerateUntil(30'000'000, &s);
  EXPECT_FALSE(sim.set_finished());
  EXPECT_TRUE(sim.truth().empty());
  for (const auto* imu : {&s.sacrum, &s.sternum, &s.thigh, &s.shank}) {
    ASSERT_EQ(imu->size(), 6001u);
    for (const ImuSample& x : *imu) {
      // Sensor noise, a small bias and micro-sway only.
      ASSERT_NEAR(Norm(Accel(x)), kG, 0.2);
      ASSERT_LT(Norm(Gyro(x)), 0.06);
    }
  }
  const double mean_fz = std::accumulate(s.force.begin(), s.force.end(), 0.0,
                                         [](double a, const ForceSample& f) {
                                           return a + f.fz_n;
                                         }) /
                         s.force.size();
  EXPECT_NEAR(mean_fz, 70 * kG, 1.0);
}

// Standing, every accelerometer reads gravity only: +9.81 on z when strapped
// square to its segment, tilted by at most the mounting tilt otherwise.
TEST(Simulator, EveryAccelerometerReadsGravityOnZAtRest) {
  for (StanceSide side : {StanceSide::kLeft, StanceSide::kRight}) {
    const PatientProfile square = SquareMounts(Profile("moderate", side));
    const Recording rec = SimulateRecording(square, 3);
    const PatientProfile strapped = Profile("moderate", side);
    const Recording tilted = SimulateRecording(strapped, 3);
    for (Placement placement : kPlacements) {
      const Vec3 a = MeanAccel(rec.imu.at(placement), 0, 1'900'000);
      // Micro-sway tilts the segments by tenths of a degree.
      EXPECT_NEAR(a.x, 0, 0.1) << PlacementName(placement);
      EXPECT_NEAR(a.y, 0, 0.1) << PlacementName(placement);
      EXPECT_NEAR(a.z, kG, 0.02) << PlacementName(placement);
      const Vec3 b = MeanAccel(tilted.imu.at(placement), 0, 1'900'000);
      EXPECT_NEAR(Norm(b), kG, 0.02) << PlacementName(placement);
      EXPECT_LT(AngleDeg(b, Vec3{0, 0, 1}), strapped.mount_tilt_max_deg + 0.6)
          << PlacementName(placement);
    }
  }
}

// Each IMU has its own mounting, noise and gyroscope bias, and the bias
// drifts.
TEST(Simulator, EveryImuHasItsOwnMountAndBias) {
  PatientProfile p = Profile("level");
  p.gyro_bias_walk_radps_per_s = 0.002;
  StepDownSimulator sim(p, 5, 0);
  SimulatedSamples s;
  sim.GenerateUntil(300'000'000, &s);  // five minutes of standing
  const std::array<const std::vector<ImuSample>*, 4> imus = {
      &s.sacrum, &s.sternum, &s.thigh, &s.shank};
  for (size_t i = 0; i < imus.size(); ++i) {
    const Vec3 up = MeanAccel(*imus[i], 0, 10'000'000);
    const Vec3 bias = MeanGyro(*imus[i], 0, 10'000'000);
    const Vec3 later = MeanGyro(*imus[i], 290'000'000, 300'000'000);
    EXPECT_LE(std::abs(bias.x), p.gyro_bias_radps + 0.003);
    // Random walk over ~290 s: sigma 0.002 * sqrt(290) = 0.034 rad/s per
    // axis, so the bias has all but surely moved by more than 0.003.
    EXPECT_GT(Norm(later - bias), 0.003) << i;
    for (size_t j = 0; j < i; ++j) {
      EXPECT_GT(AngleDeg(up, MeanAccel(*imus[j], 0, 10'000'000)), 0.1);
      EXPECT_GT(Norm(bias - MeanGyro(*imus[j], 0, 10'000'000)), 1e-4);
    }
  }
}

TEST(Simulator, SetTimingAndTruth) {
  for (const std::string& name : AllProfileNames()) {
    const PatientProfile p = Profile(name);
    StepDownSimulator sim(p, 9, 0);
    SimulatedSamples s;
    sim.GenerateUntil(3'000'000, &s);
    sim.BeginSet(3'000'000);
    ASSERT_EQ(sim.truth().size(), 10u);
    // Lead 2 s; the calibration movement: foot down 0.6 s, knees bend 1.5 s,
    // hold 0.2 s, straighten 1.5 s, foot up 0.6 s; then 1.5 s of standing.
    EXPECT_NEAR(sim.truth()[0].start_us, 3'000'000 + 2'000'000 + 5'900'000, 1);
    int64_t t = 3'000'000;
    while (!sim.set_finished()) sim.GenerateUntil(t += 100'000, &s);
    // Lead and calibration 7.9 s, ten reps with pauses, tail 1.5 s.
    EXPECT_LT(t - 3'000'000, 50'000'000) << name;
    EXPECT_GE(t, sim.truth().back().end_us + 1'500'000);
    const double shortest_s =
        (p.lower_s + p.rise_s) * (1 - p.tempo_variation) + p.hold_s * 0.8;
    for (size_t i = 0; i < sim.truth().size(); ++i) {
      const TruthRepetition& r = sim.truth()[i];
      EXPECT_EQ(r.rep, static_cast<int>(i) + 1);
      EXPECT_GE(r.end_us - r.start_us, shortest_s * 1e6 - 1) << name;
      if (i > 0) {
        EXPECT_GT(r.start_us, sim.truth()[i - 1].end_us);
      }
      ASSERT_TRUE(r.peak_pelvic_drop_deg.has_value());
      ASSERT_TRUE(r.peak_trunk_lean_deg.has_value());
      ASSERT_TRUE(r.knee_flexion_deg.has_value());
      ASSERT_TRUE(r.knee_valgus_deg.has_value());
      ASSERT_TRUE(r.cop_ml_range_mm.has_value());
      EXPECT_GT(*r.cop_ml_range_mm, 1.0);
      EXPECT_GT(*r.knee_flexion_deg, 30) << name;
      EXPECT_LT(*r.knee_flexion_deg, 90) << name;
    }
  }
}

// Per-rep truth follows each profile's mean; every column's definition is
// checked against the sensors in the tests below.
TEST(Simulator, TruthFollowsTheProfiles) {
  for (const std::string& name : AllProfileNames()) {
    for (StanceSide side : {StanceSide::kLeft, StanceSide::kRight}) {
      const PatientProfile p = Profile(name, side);
      double drop = 0, lean = 0, flexion = 0, valgus = 0;
      int n = 0;
      for (uint64_t seed = 1; seed <= 4; ++seed) {
        // The plan's truth is known as soon as the set begins.
        StepDownSimulator sim(p, seed, 0);
        sim.BeginSet(0);
        for (const auto& r : sim.truth()) {
          drop += *r.peak_pelvic_drop_deg;
          lean += *r.peak_trunk_lean_deg;
          flexion += *r.knee_flexion_deg;
          valgus += *r.knee_valgus_deg;
          ++n;
        }
      }
      // Means of 40 draws: within about 3 standard errors, plus micro-sway.
      const double k = 3 / std::sqrt(n);
      EXPECT_NEAR(drop / n, p.pelvic_drop_mean_deg,
                  k * p.pelvic_drop_sd_deg + 0.3)
          << name;
      EXPECT_NEAR(lean / n, p.trunk_lean_mean_deg,
                  k * p.trunk_lean_sd_deg + 0.3)
          << name;
      EXPECT_NEAR(flexion / n, p.knee_flexion_mean_deg,
                  k * p.knee_flexion_sd_deg + 0.5)
          << name;
      EXPECT_NEAR(valgus / n, p.knee_valgus_mean_deg,
                  k * p.knee_valgus_sd_deg + 0.3)
          << name;
    }
  }
}

// At the bottom hold the accelerometer reads gravity only, so the angle
// between its standing and bottom directions is the pelvis's total tilt,
// acos(cos(drop) cos(forward tilt)) for this rotation order.
TEST(Simulator, AccelerometerSeesThePelvisTilt) {
  PatientProfile p = Profile("trendelenburg");
  p.hold_s = 1.0;
  const Recording rec = SimulateRecording(p, 5);
  const auto& imu = rec.imu.at(Placement::kSacrum);
  const Vec3 standing = MeanAccel(imu, 0, 1'500'000);
  for (const TruthRepetition& r : rec.truth) {
    // The middle of the hold (lowering 1.2 s +-10%, hold 1 s +-20%).
    const int64_t mid = r.start_us + 1'320'000 + 500'000;
    const Vec3 bottom = MeanAccel(imu, mid - 250'000, mid + 250'000);
    const double drop = DegToRad(*r.peak_pelvic_drop_deg);
    const double expected = RadToDeg(std::acos(
        std::cos(drop) * std::cos(DegToRad(p.pelvic_forward_tilt_deg))));
    EXPECT_NEAR(AngleDeg(standing, bottom), expected, 0.4);
  }
}

// With the left leg on the step the free (right) side drops: the sensor's x
// axis (toward the right) tips down, so gravity's "up" leans to -x. The
// trunk's lean has the same sign convention.
TEST(Simulator, DropAndLeanSignsFollowTheFreeSide) {
  for (StanceSide side : {StanceSide::kLeft, StanceSide::kRight}) {
    for (const char* name : {"trendelenburg", "lean"}) {
      PatientProfile p = SquareMounts(Profile(name, side));
      p.hold_s = 1.0;
      const Recording rec = SimulateRecording(p, 6);
      const TruthRepetition& r = rec.truth[0];
      const int64_t mid = r.start_us + 1'820'000;
      for (Placement placement : {Placement::kSacrum, Placement::kSternum}) {
        const auto& imu = rec.imu.at(placement);
        const Vec3 standing = Normalized(MeanAccel(imu, 0, 1'500'000));
        const Vec3 bottom =
            Normalized(MeanAccel(imu, mid - 250'000, mid + 250'000));
        const double angle = placement == Placement::kSacrum
                                 ? *r.peak_pelvic_drop_deg
                                 : *r.peak_trunk_lean_deg;
        EXPECT_NEAR(bottom.x - standing.x,
                    -FreeSideX(side) * std::sin(DegToRad(angle)), 0.03)
            << name << " " << PlacementName(placement);
      }
    }
  }
  EXPECT_GT(*SimulateRecording(Profile("trendelenburg"), 6)
                 .truth[0]
                 .peak_pelvic_drop_deg,
            5);
  EXPECT_LT(*SimulateRecording(Profile("lean"), 6).truth[0].peak_trunk_lean_deg,
            -5);
  EXPECT_LT(
      *SimulateRecording(Profile("hike"), 6).truth[0].peak_pelvic_drop_deg, -2);
}

// Integrating each gyroscope (bias-free, noise kept) over a repetition gives
// the segments' rotations: the knee's flexion between the thigh and shank
// sensors, the obliquity of the pelvis and the lean of the trunk, all as in
// truth.csv; the rep ends standing, so every sensor returns to where it
// started.
TEST(Simulator, GyroscopesIntegrateToTheSegmentRotations) {
  for (StanceSide side : {StanceSide::kLeft, StanceSide::kRight}) {
    PatientProfile p = SquareMounts(Profile("valgus", side));
    p.gyro_bias_radps = 0;
    p.gyro_bias_walk_radps_per_s = 0;
    p.trunk_lean_mean_deg = 6;
    const Recording rec = SimulateRecording(p, 8);
    for (int rep : {1, 4}) {
      const TruthRepetition& r = rec.truth[rep];
      std::vector<Quaternion> thigh;
      std::vector<int64_t> times;
      IntegrateGyro(rec.imu.at(Placement::kThigh), r.start_us, r.end_us,
                    [&](int64_t t, const Quaternion& q) {
                      thigh.push_back(q);
                      times.push_back(t);
                    });
      size_t i = 0;
      double max_knee = 0;
      const Quaternion shank_end = IntegrateGyro(
          rec.imu.at(Placement::kShank), r.start_us, r.end_us,
          [&](int64_t t, const Quaternion& q) {
            ASSERT_EQ(t, times[i]);
            // Thigh and shank frames coincide standing, so this is the
            // knee's flexion beyond standing.
            max_knee = std::max(max_knee, AngleDeg(Conjugate(thigh[i++]) * q));
          });
      // Less the knee's micro-sway when the rep starts (at most 0.54 deg).
      EXPECT_NEAR(max_knee + p.standing_knee_flexion_deg, *r.knee_flexion_deg,
                  0.6);
      EXPECT_LT(AngleDeg(thigh.back()), 1.0);
      EXPECT_LT(AngleDeg(shank_end), 1.0);

      // Standing, the segment frames are the world's (up to micro-sway), so
      // the integrated rotation carries the x axis to where it is in the
      // world.
      for (Placement placement : {Placement::kSacrum, Placement::kSternum}) {
        double hi = -90, lo = 90;
        const Quaternion end = IntegrateGyro(
            rec.imu.at(placement), r.start_us, r.end_us,
            [&](int64_t, const Quaternion& q) {
              const double angle =
                  -FreeSideX(side) * RadToDeg(Elevation(Rotate(q, {1, 0, 0})));
              hi = std::max(hi, angle);
              lo = std::min(lo, angle);
            });
        const double peak = std::abs(hi) >= std::abs(lo) ? hi : lo;
        const double truth = placement == Placement::kSacrum
                                 ? *r.peak_pelvic_drop_deg
                                 : *r.peak_trunk_lean_deg;
        EXPECT_NEAR(peak, truth, 0.5) << PlacementName(placement);
        EXPECT_LT(AngleDeg(end), 1.0) << PlacementName(placement);
      }
    }
  }
}

// The pelvis's rotation alone: halfway it is about the forward tilt.
TEST(Simulator, GyroscopeIntegratesToThePelvisMotion) {
  PatientProfile p = Profile("level");
  p.gyro_bias_radps = 0;
  p.gyro_bias_walk_radps_per_s = 0;
  const Recording rec = SimulateRecording(p, 8);
  const TruthRepetition& r = rec.truth[2];
  double max_angle = 0;
  const Quaternion q =
      IntegrateGyro(rec.imu.at(Placement::kSacrum), r.start_us, r.end_us,
                    [&](int64_t, const Quaternion& q) {
                      max_angle = std::max(max_angle, AngleDeg(q));
                    });
  EXPECT_LT(AngleDeg(q), 0.5);
  EXPECT_GT(max_angle, p.pelvic_forward_tilt_deg - 0.5);
  EXPECT_LT(max_angle, p.pelvic_forward_tilt_deg + 5);
}

// Vertical momentum is the same before and after the set, so the plate's
// mean force over it is body weight; within a rep it dips as the body starts
// down and peaks as it is stopped.
TEST(Simulator, ForcePlateFollowsTheCentreOfMass) {
  for (const std::string& name : AllProfileNames()) {
    PatientProfile p = Profile(name);
    p.calibration_movement = false;  // its free foot takes weight
    p.touchdown_probability = 0;
    const Recording rec = SimulateRecording(p, 7);
    double sum = 0;
    double lo = 1e9, hi = 0;
    for (const ForceSample& f : rec.force) {
      sum += f.fz_n;
      lo = std::min(lo, f.fz_n);
      hi = std::max(hi, f.fz_n);
    }
    const double weight = p.body_mass_kg * kG;
    EXPECT_NEAR(sum / rec.force.size(), weight, 0.5) << name;
    // About 0.1 m of lowering in ~1.2 s: the centre of mass accelerates by
    // a few tenths of a m/s^2, most as the knee bends deepest.
    EXPECT_LT(lo, weight - 0.3 * p.body_mass_kg) << name;
    EXPECT_GT(hi, weight + 0.3 * p.body_mass_kg) << name;
    // A minimum-jerk path peaks at 5.77 / T^2 of its excursion, 17% above
    // a raised cosine's 4.93 / T^2, so a quick rep brakes a little harder.
    EXPECT_GT(lo, weight - 2.5 * p.body_mass_kg) << name;
    EXPECT_LT(hi, weight + 3.0 * p.body_mass_kg) << name;
  }
  PatientProfile heavy = Profile("moderate");
  heavy.touchdown_probability = 0;
  heavy.calibration_movement = false;
  heavy.body_mass_kg = 104;
  heavy.body_height_m = 1.93;
  const Recording rec = SimulateRecording(heavy, 7);
  double sum = 0;
  for (const ForceSample& f : rec.force) sum += f.fz_n;
  EXPECT_NEAR(sum / rec.force.size(), heavy.body_mass_kg * kG, 0.5);
}

// A body's acceleration is continuous: muscles build force over tens of
// milliseconds. Without load-cell noise and without the free foot's
// touch-downs (an outside force, which may come on fast), the plate's force,
// m (g + a), may change between 1 kHz samples by at most m j dt for a
// plausible jerk j of the centre of mass. Bound: 200 m/s^3, 1.4% of body
// weight per millisecond. The quickest movement in the corpus, a
// minimum-jerk rise of some 8 cm in 0.4 s (fast profile at tempo x0.8),
// would start at 60 * 0.08 / 0.4^3 = 75 m/s^3 if the centre of mass moved
// evenly with the knee; at depth the hip sinks fastest per degree of knee
// flexion, which takes it to about 125 m/s^3. The other profiles' reps stay
// under 30. A lowering and rising
// joined with a step in acceleration (as the simulator's once were, up to
// 13% of body weight) read 800-3000 m/s^3 here. The calibration movement
// stays in: its joins are the body's too, and its free foot loads over
// 0.3 s (26 m/s^3 equivalent).
TEST(Simulator, PlateForceChangesNoFasterThanABodyCanJerk) {
  constexpr double kMaxJerkMps3 = 200;
  std::vector<PatientProfile> profiles;
  for (const std::string& name : AllProfileNames()) {
    profiles.push_back(Profile(name, StanceSide::kRight));
  }
  PatientProfile quickest = Profile("fast");
  quickest.lower_s *= 0.8;
  quickest.hold_s *= 0.8;
  quickest.rise_s *= 0.8;
  quickest.pause_s *= 0.8;
  profiles.push_back(quickest);
  for (PatientProfile& p : profiles) {
    p.touchdown_probability = 0;
    p.force_noise_n = 0;
    const Recording rec = SimulateRecording(p, 5);
    ASSERT_GT(rec.force.size(), 1000u);
    double largest_jerk = 0;
    int64_t at_us = 0;
    for (size_t i = 1; i < rec.force.size(); ++i) {
      ASSERT_TRUE(std::isfinite(rec.force[i].fz_n)) << p.name;
      const double dt = (rec.force[i].t_us - rec.force[i - 1].t_us) * 1e-6;
      const double jerk = std::abs(rec.force[i].fz_n - rec.force[i - 1].fz_n) /
                          (p.body_mass_kg * dt);
      if (jerk > largest_jerk) {
        largest_jerk = jerk;
        at_us = rec.force[i].t_us;
      }
    }
    EXPECT_LT(largest_jerk, kMaxJerkMps3) << p.name << " at " << at_us;
    // The reps did move the body (a still plate would pass trivially).
    EXPECT_GT(largest_jerk, 0.05 * kMaxJerkMps3) << p.name;
  }
}

// The same patient with and without the free foot's weight: the plate's
// force differs by exactly the configured share of body weight while the
// foot is down, for 0.2-0.5 s near the deepest point, and not otherwise.
TEST(Simulator, TouchDownTakesTheConfiguredWeightOffThePlate) {
  PatientProfile with = Profile("touchdown");
  with.touchdown_probability = 0.5;
  with.touchdown_weight_fraction = 0.3;
  PatientProfile without = with;
  without.touchdown_weight_fraction = 0;
  const Recording a = SimulateRecording(with, 3);
  const Recording b = SimulateRecording(without, 3);
  ASSERT_EQ(a.force.size(), b.force.size());
  const double load = 0.3 * with.body_mass_kg * kG;
  int touchdowns = 0;
  for (const TruthRepetition& r : a.truth) {
    double largest = 0;
    int64_t first = -1, last = -1;
    for (size_t i = 0; i < a.force.size(); ++i) {
      const double taken = b.force[i].fz_n - a.force[i].fz_n;
      ASSERT_GE(taken, -1e-9);
      // Only while the foot is down, the plate's COP moves away from it.
      const double cop_shift = a.force[i].cop_x_mm - b.force[i].cop_x_mm;
      if (taken == 0) {
        ASSERT_EQ(cop_shift, 0);
      } else {
        ASSERT_LT(cop_shift * FreeSideX(with.stance_side), 0);
      }
      if (a.force[i].t_us < r.start_us || a.force[i].t_us > r.end_us) continue;
      largest = std::max(largest, taken);
      if (taken > 1e-9) {
        if (first < 0) first = a.force[i].t_us;
        last = a.force[i].t_us;
      }
    }
    if (first < 0) continue;
    ++touchdowns;
    EXPECT_NEAR(largest, load, 1e-6);
    EXPECT_GE(last - first, 190'000);
    EXPECT_LE(last - first, 500'000);
    // Near the deepest point: the middle of the rep, give or take the
    // hold and the tempo.
    const int64_t middle = (r.start_us + r.end_us) / 2;
    EXPECT_NEAR((first + last) / 2, middle, 250'000);
  }
  EXPECT_GE(touchdowns, 2);
  EXPECT_LE(touchdowns, 8);
  // Outside every rep the plate carries everything.
  for (size_t i = 0; i < a.force.size(); ++i) {
    if (a.force[i].t_us < a.truth.front().start_us) {
      ASSERT_EQ(a.force[i].fz_n, b.force[i].fz_n);
    }
  }
}

// truth.csv's COP range is computed from exactly the force samples written.
TEST(Simulator, CopRangeTruthMatchesTheForceSamples) {
  for (const char* name : {"level", "trendelenburg", "touchdown"}) {
    const Recording rec = SimulateRecording(Profile(name), 10);
    for (const TruthRepetition& r : rec.truth) {
      double lo = std::numeric_limits<double>::infinity(), hi = -lo;
      for (const ForceSample& f : rec.force) {
        if (f.t_us < r.start_us || f.t_us > r.end_us) continue;
        if (std::isnan(f.cop_x_mm)) continue;
        lo = std::min(lo, f.cop_x_mm);
        hi = std::max(hi, f.cop_x_mm);
      }
      EXPECT_EQ(*r.cop_ml_range_mm, hi - lo) << name;
    }
  }
}

// The COP follows the centre of mass: toward the free side as the pelvis
// drops and the trunk goes with it, toward the stance side when the trunk
// leans over the stance leg; it stays under the foot.
TEST(Simulator, CopFollowsTheCentreOfMass) {
  for (StanceSide side : {StanceSide::kLeft, StanceSide::kRight}) {
    for (const auto& [name, toward_free] :
         {std::pair{"trendelenburg", true}, std::pair{"lean", false}}) {
      PatientProfile p = Profile(name, side);
      p.calibration_movement = false;
      p.hold_s = 1.0;
      p.tempo_variation = 0;
      const Recording rec = SimulateRecording(p, 3);
      double standing = 0, bottom = 0;
      int n_standing = 0, n_bottom = 0;
      double lo_y = 1e9, hi_y = -1e9;
      for (const ForceSample& f : rec.force) {
        lo_y = std::min(lo_y, f.cop_y_mm);
        hi_y = std::max(hi_y, f.cop_y_mm);
        if (f.t_us < 1'900'000) {
          standing += f.cop_x_mm;
          ++n_standing;
        }
        // The middle of each rep's hold (lowering 1.2 s, hold >= 0.8 s);
        // averaged over the reps, the pelvis's turning and the sway cancel.
        for (const TruthRepetition& r : rec.truth) {
          if (std::abs(f.t_us - (r.start_us + 1'600'000)) < 200'000) {
            bottom += f.cop_x_mm;
            ++n_bottom;
          }
        }
      }
      const double shift =
          FreeSideX(side) * (bottom / n_bottom - standing / n_standing);
      // About 2 mm per degree of drop and 2.5 mm per degree of trunk lean.
      if (toward_free) {
        EXPECT_GT(shift, 20) << name;
      } else {
        EXPECT_LT(shift, -10) << name;
      }
      EXPECT_LT(std::abs(shift), 80) << name;
      // A foot is about 250 mm long; the COP stays within it.
      EXPECT_LT(hi_y - lo_y, 200) << name;
    }
  }
}

TEST(Simulator, BeginSetDuringASetIsIgnored) {
  StepDownSimulator sim(Profile("level"), 3, 0);
  sim.BeginSet(0);
  const int64_t first_start = sim.truth()[0].start_us;
  SimulatedSamples s;
  sim.GenerateUntil(5'000'000, &s);
  sim.BeginSet(5'000'000);
  EXPECT_EQ(sim.truth()[0].start_us, first_start);
}

TEST(Simulator, RecordingHasEveryImu) {
  const Recording rec = SimulateRecording(Profile("level"), 1);
  ASSERT_EQ(rec.imu.size(), 4u);
  for (Placement placement : kPlacements) {
    ASSERT_EQ(rec.imu.count(placement), 1u);
    EXPECT_EQ(rec.imu.at(placement).size(),
              rec.imu.at(Placement::kSacrum).size());
  }
}

}  // namespace
// The prompted calibration movement: both feet down (the plate under the
// stance foot carries about half the weight), knees bent, no repetition.
TEST(Simulator, CalibrationMovementPutsHalfTheWeightOnTheFreeFoot) {
  const PatientProfile p = Profile("trendelenburg");
  const Recording rec = SimulateRecording(p, 2);
  EXPECT_TRUE(rec.meta.calibration_movement);
  const double weight = p.body_mass_kg * 9.81;
  const auto foot_down = static_cast<int64_t>(p.standing_lead_s * 1e6);
  double least = 1e9;
  for (const ForceSample& f : rec.force) {
    if (f.t_us > foot_down && f.t_us < rec.truth[0].start_us) {
      least = std::min(least, f.fz_n);
    }
  }
  EXPECT_LT(least, 0.6 * weight);
  EXPECT_GT(least, 0.3 * weight);
  PatientProfile without = p;
  without.calibration_movement = false;
  EXPECT_FALSE(SimulateRecording(without, 2).meta.calibration_movement);
}

// A wrist IMU draws from streams of its own: every other sensor's samples
// and the truth are exactly those of the same patient without one.
TEST(Simulator, WristLeavesEveryOtherSensorAsItWas) {
  for (const char* name : {"level", "trendelenburg"}) {
    const PatientProfile without = Profile(name, StanceSide::kRight);
    PatientProfile with = without;
    with.wrist_imu = true;
    with.arms_use_probability = 0.5;
    const Recording a = SimulateRecording(without, 4);
    const Recording b = SimulateRecording(with, 4);
    EXPECT_EQ(a.imu.count(Placement::kWrist), 0u) << name;
    ASSERT_EQ(b.imu.count(Placement::kWrist), 1u) << name;
    EXPECT_EQ(b.imu.at(Placement::kWrist).size(),
              b.imu.at(Placement::kSacrum).size());
    for (Placement placement : kPlacements) {
      EXPECT_TRUE(SameImu(a.imu.at(placement), b.imu.at(placement)))
          << name << " " << PlacementName(placement);
    }
    EXPECT_TRUE(SameForce(a.force, b.force)) << name;
    ASSERT_EQ(a.truth.size(), b.truth.size());
    for (size_t i = 0; i < a.truth.size(); ++i) {
      EXPECT_EQ(a.truth[i].start_us, b.truth[i].start_us);
      EXPECT_EQ(a.truth[i].peak_pelvic_drop_deg,
                b.truth[i].peak_pelvic_drop_deg);
      EXPECT_EQ(a.truth[i].cop_ml_range_mm, b.truth[i].cop_ml_range_mm);
      EXPECT_FALSE(a.truth[i].arms_used.has_value());
      EXPECT_FALSE(a.truth[i].peak_arm_elevation_deg.has_value());
      EXPECT_TRUE(b.truth[i].arms_used.has_value());
    }
  }
}

// The arm hangs plumb while standing; a rep that uses it for balance lifts
// it by the profile's 25-60 deg, any other moves it a few degrees at most.
TEST(Simulator, ArmsUsedForBalanceLiftTheArm) {
  int used = 0, reps = 0;
  for (StanceSide side : {StanceSide::kLeft, StanceSide::kRight}) {
    for (uint64_t seed = 1; seed <= 4; ++seed) {
      PatientProfile p = SquareMounts(Profile("moderate", side));
      p.wrist_imu = true;
      p.arms_use_probability = 0.5;
      const Recording rec = SimulateRecording(p, seed);
      const std::vector<ImuSample>& wrist = rec.imu.at(Placement::kWrist);
      // Standing: gravity along the forearm, the sensor's +z.
      const Vec3 standing = MeanAccel(wrist, 0, 1'500'000);
      EXPECT_LT(AngleDeg(standing, {0, 0, 1}), 1.5);
      for (const TruthRepetition& t : rec.truth) {
        ++reps;
        ASSERT_TRUE(t.arms_used && t.peak_arm_elevation_deg);
        if (*t.arms_used) {
          ++used;
          EXPECT_GT(*t.peak_arm_elevation_deg, 24);
          EXPECT_LT(*t.peak_arm_elevation_deg, 61);
        } else {
          EXPECT_LT(*t.peak_arm_elevation_deg, p.relaxed_arm_max_deg + 1);
        }
        // The sensor's own gyroscope turns through the lift (and the
        // trunk's few degrees of turning, and its bias).
        double largest = 0;
        IntegrateGyro(wrist, t.start_us, t.end_us,
                      [&](int64_t, const Quaternion& q) {
                        largest = std::max(largest, AngleDeg(q));
                      });
        EXPECT_NEAR(largest, *t.peak_arm_elevation_deg, 3) << "rep " << t.rep;
      }
    }
  }
  EXPECT_GT(used, reps / 4);
  EXPECT_LT(used, 3 * reps / 4);
}

}  // namespace stephub
