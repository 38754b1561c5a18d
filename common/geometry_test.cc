// Tests of the rotation helpers the simulator and the scoring rely on.
#include "common/geometry.h"

#include <random>

#include "gtest/gtest.h"

namespace stephub {
namespace {

void ExpectNear(const Vec3& a, const Vec3& b, double tol) {
  EXPECT_NEAR(a.x, b.x, tol);
  EXPECT_NEAR(a.y, b.y, tol);
  EXPECT_NEAR(a.z, b.z, tol);
}

Quaternion RandomRotation(std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(-2, 2);
  return FromRotationVector({u(rng), u(rng), u(rng)});
}

TEST(Geometry, AxisRotationsAreRightHanded) {
  ExpectNear(RotZ(DegToRad(90)) * Vec3{1, 0, 0}, {0, 1, 0}, 1e-15);
  ExpectNear(RotX(DegToRad(90)) * Vec3{0, 1, 0}, {0, 0, 1}, 1e-15);
  ExpectNear(RotY(DegToRad(90)) * Vec3{0, 0, 1}, {1, 0, 0}, 1e-15);
}

TEST(Geometry, QuaternionMatchesMatrix) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100; ++i) {
    const Quaternion q = RandomRotation(rng);
    const Vec3 v{0.3, -1.2, 2.5};
    ExpectNear(Rotate(q, v), ToMatrix(q) * v, 1e-12);
    const Quaternion back = FromMatrix(ToMatrix(q));
    ExpectNear(Rotate(back, v), Rotate(q, v), 1e-12);
  }
}

TEST(Geometry, RotationVectorRoundTrip) {
  for (const Vec3& v : {Vec3{0, 0, 0}, Vec3{1e-9, -2e-9, 0},
                        Vec3{0.1, 0.2, -0.3}, Vec3{0, 3.0, 0}}) {
    ExpectNear(ToRotationVector(FromRotationVector(v)), v, 1e-12);
  }
}

TEST(Geometry, ProductComposesRotations) {
  std::mt19937_64 rng(2);
  const Quaternion a = RandomRotation(rng), b = RandomRotation(rng);
  const Vec3 v{1, 2, 3};
  ExpectNear(Rotate(a * b, v), Rotate(a, Rotate(b, v)), 1e-12);
  ExpectNear(ToMatrix(a * b) * v, ToMatrix(a) * (ToMatrix(b) * v), 1e-12);
}

// The simulator's pelvis rotation order keeps obliquity independent of
// forward tilt and heading.
TEST(Geometry, PelvisOrderIsolatesObliquity) {
  for (double tilt : {0.0, 12.0, 30.0}) {
    for (double heading : {-20.0, 0.0, 5.0}) {
      const Mat3 r =
          RotZ(DegToRad(heading)) * RotY(DegToRad(7)) * RotX(-DegToRad(tilt));
      EXPECT_NEAR(RadToDeg(Elevation(r.Column(0))), -7, 1e-12);
    }
  }
}

}  // namespace
}  // namespace stephub
