// Tests of the step-down simulator: determinism, timing, and that what the
// sensors read follows from the simulated motion.
#include "common/simulator.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "common/geometry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stephub {
namespace {

using ::testing::HasSubstr;

constexpr double kG = 9.81;

PatientProfile Profile(const std::string& name,
                       StanceSide side = StanceSide::kLeft) {
  PatientProfile p = *ProfileByName(name);
  p.stance_side = side;
  return p;
}

Vec3 Accel(const ImuSample& s) { return {s.ax_mps2, s.ay_mps2, s.az_mps2}; }

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

double AngleDeg(const Vec3& a, const Vec3& b) {
  return RadToDeg(
      std::acos(std::clamp(Dot(Normalized(a), Normalized(b)), -1.0, 1.0)));
}

bool SameImu(const std::vector<ImuSample>& a, const std::vector<ImuSample>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const ImuSample& x, const ImuSample& y) {
                      return x.t_us == y.t_us && x.ax_mps2 == y.ax_mps2 &&
                             x.gz_radps == y.gz_radps;
                    });
}

TEST(Simulator, ProfilesByName) {
  EXPECT_THAT(ProfileNames(),
              ::testing::ElementsAre("level", "moderate", "trendelenburg"));
  for (const std::string& name : ProfileNames()) {
    auto p = ProfileByName(name);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->name, name);
    EXPECT_EQ(p->repetitions, 10);
    EXPECT_EQ(p->stance_side, StanceSide::kLeft);
  }
  auto bad = ProfileByName("marathon");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("level, moderate, trendelenburg"));
}

TEST(Simulator, SameSeedSameRecording) {
  const Recording a = SimulateRecording(Profile("moderate"), 11);
  const Recording b = SimulateRecording(Profile("moderate"), 11);
  const Recording c = SimulateRecording(Profile("moderate"), 12);
  EXPECT_TRUE(
      SameImu(a.imu.at(Placement::kSacrum), b.imu.at(Placement::kSacrum)));
  EXPECT_FALSE(
      SameImu(a.imu.at(Placement::kSacrum), c.imu.at(Placement::kSacrum)));
  ASSERT_EQ(a.force.size(), b.force.size());
  for (size_t i = 0; i < a.force.size(); ++i) {
    ASSERT_EQ(a.force[i].fz_n, b.force[i].fz_n);
  }
  ASSERT_EQ(a.truth.size(), b.truth.size());
  for (size_t i = 0; i < a.truth.size(); ++i) {
    EXPECT_EQ(a.truth[i].peak_pelvic_drop_deg, b.truth[i].peak_pelvic_drop_deg);
  }
}

TEST(Simulator, OutputDoesNotDependOnHowTimeIsSliced) {
  const PatientProfile p = Profile("trendelenburg");
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
  ASSERT_EQ(a.force.size(), b.force.size());
  EXPECT_EQ(a.force.back().cop_x_mm, b.force.back().cop_x_mm);
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
  for (const ImuSample& x : s.sacrum) {
    // Sensor noise, a small bias and micro-sway only.
    ASSERT_NEAR(Norm(Accel(x)), kG, 0.2);
    ASSERT_LT(Norm(Vec3{x.gx_radps, x.gy_radps, x.gz_radps}), 0.06);
  }
  const double mean_fz = std::accumulate(s.force.begin(), s.force.end(), 0.0,
                                         [](double a, const ForceSample& f) {
                                           return a + f.fz_n;
                                         }) /
                         s.force.size();
  EXPECT_NEAR(mean_fz, 70 * kG, 1.0);
}

TEST(Simulator, SetTimingAndTruth) {
  for (const std::string& name : ProfileNames()) {
    const PatientProfile p = Profile(name);
    StepDownSimulator sim(p, 9, 0);
    SimulatedSamples s;
    sim.GenerateUntil(3'000'000, &s);
    sim.BeginSet(3'000'000);
    ASSERT_EQ(sim.truth().size(), 10u);
    EXPECT_NEAR(sim.truth()[0].start_us, 3'000'000 + 2'000'000, 1);
    int64_t t = 3'000'000;
    while (!sim.set_finished()) sim.GenerateUntil(t += 100'000, &s);
    // Lead 2 s, ten reps with pauses, tail 1.5 s: well under 45 s.
    EXPECT_LT(t - 3'000'000, 45'000'000) << name;
    EXPECT_GE(t, sim.truth().back().end_us + 1'500'000);
    for (size_t i = 0; i < sim.truth().size(); ++i) {
      const TruthRepetition& r = sim.truth()[i];
      EXPECT_EQ(r.rep, static_cast<int>(i) + 1);
      EXPECT_GT(r.end_us - r.start_us, 2'000'000);
      if (i > 0) {
        EXPECT_GT(r.start_us, sim.truth()[i - 1].end_us);
      }
      ASSERT_TRUE(r.peak_pelvic_drop_deg.has_value());
      ASSERT_TRUE(r.cop_ml_range_mm.has_value());
      EXPECT_GT(*r.cop_ml_range_mm, 1.0);
      EXPECT_FALSE(r.knee_flexion_deg.has_value());
    }
  }
}

TEST(Simulator, TruthDropsFollowTheProfiles) {
  const std::pair<const char*, double> expected[] = {
      {"level", 1.0}, {"moderate", 5.5}, {"trendelenburg", 11}};
  for (const auto& [name, mean] : expected) {
    for (StanceSide side : {StanceSide::kLeft, StanceSide::kRight}) {
      double sum = 0;
      int n = 0;
      for (uint64_t seed = 1; seed <= 4; ++seed) {
        for (const auto& r :
             SimulateRecording(Profile(name, side), seed).truth) {
          sum += *r.peak_pelvic_drop_deg;
          ++n;
        }
      }
      EXPECT_NEAR(sum / n, mean, 0.6) << name;
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
// axis (toward the right) tips down, so gravity's "up" leans to -x.
TEST(Simulator, DropSignFollowsTheFreeSide) {
  for (StanceSide side : {StanceSide::kLeft, StanceSide::kRight}) {
    PatientProfile p = Profile("trendelenburg", side);
    p.hold_s = 1.0;
    const Recording rec = SimulateRecording(p, 6);
    const auto& imu = rec.imu.at(Placement::kSacrum);
    const Vec3 standing = Normalized(MeanAccel(imu, 0, 1'500'000));
    const TruthRepetition& r = rec.truth[0];
    const int64_t mid = r.start_us + 1'820'000;
    const Vec3 bottom =
        Normalized(MeanAccel(imu, mid - 250'000, mid + 250'000));
    const double expected = std::sin(DegToRad(*r.peak_pelvic_drop_deg));
    EXPECT_GT(*r.peak_pelvic_drop_deg, 5);
    EXPECT_NEAR(bottom.x - standing.x,
                side == StanceSide::kLeft ? -expected : expected, 0.03);
  }
}

// Vertical momentum is the same before and after the set, so the plate's
// mean force over it is body weight; within a rep it dips as the body starts
// down and peaks as it is stopped.
TEST(Simulator, ForcePlateFollowsTheCentreOfMass) {
  const PatientProfile p = Profile("moderate");
  const Recording rec = SimulateRecording(p, 7);
  double sum = 0;
  double lo = 1e9, hi = 0;
  for (const ForceSample& f : rec.force) {
    sum += f.fz_n;
    lo = std::min(lo, f.fz_n);
    hi = std::max(hi, f.fz_n);
  }
  const double weight = p.body_mass_kg * kG;
  EXPECT_NEAR(sum / rec.force.size(), weight, 0.5);
  // Raised-cosine lowering of 0.12 m over ~1.2 s: peak |z''| ~ 0.4 m/s^2.
  EXPECT_LT(lo, weight - 0.3 * p.body_mass_kg);
  EXPECT_GT(hi, weight + 0.3 * p.body_mass_kg);
  EXPECT_GT(lo, weight - 0.8 * p.body_mass_kg);
}

// Integrating the gyroscope over a whole repetition returns the sensor to
// roughly where it started (the rep ends standing), whereas halfway the
// rotation is about the forward tilt.
TEST(Simulator, GyroscopeIntegratesToThePelvisMotion) {
  PatientProfile p = Profile("level");
  p.gyro_bias_radps = 0;
  p.gyro_bias_walk_radps_per_s = 0;
  const Recording rec = SimulateRecording(p, 8);
  const auto& imu = rec.imu.at(Placement::kSacrum);
  const TruthRepetition& r = rec.truth[2];
  Quaternion q;
  double max_angle = 0;
  for (size_t i = 1; i < imu.size(); ++i) {
    if (imu[i].t_us <= r.start_us || imu[i].t_us > r.end_us) continue;
    const double dt = (imu[i].t_us - imu[i - 1].t_us) * 1e-6;
    const Vec3 w{imu[i].gx_radps, imu[i].gy_radps, imu[i].gz_radps};
    q = q * FromRotationVector(w * dt);
    max_angle = std::max(max_angle, RadToDeg(Norm(ToRotationVector(q))));
  }
  EXPECT_LT(RadToDeg(Norm(ToRotationVector(q))), 0.5);
  EXPECT_GT(max_angle, p.pelvic_forward_tilt_deg - 0.5);
  EXPECT_LT(max_angle, p.pelvic_forward_tilt_deg + 5);
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

}  // namespace
}  // namespace stephub
