// Segment and knee angles; see segment_angles.h.
#include "hub/scoring/segment_angles.h"

#include <algorithm>
#include <cmath>

#include "hub/scoring/attitude.h"

namespace stephub::scoring {

SegmentAngles SegmentAnglesOf(const Quaternion& sensor_to_world,
                              const StandingPosture& standing) {
  const PelvisAngles angles = PelvisAnglesOf(sensor_to_world, standing);
  return {angles.obliquity_deg, angles.forward_tilt_deg,
          Rotate(sensor_to_world, standing.long_axis)};
}

double TowardFreeSideDeg(double ml_elevation_deg, StanceSide stance_side) {
  // The right side rising lowers the free side when the free leg is the left.
  return stance_side == StanceSide::kRight ? ml_elevation_deg
                                           : -ml_elevation_deg;
}

double KneeFlexionDeg(const Vec3& thigh_axis, const Vec3& shank_axis,
                      double standing_knee_flexion_deg) {
  const double cos_angle =
      Dot(thigh_axis, shank_axis) / (Norm(thigh_axis) * Norm(shank_axis));
  return RadToDeg(std::acos(std::clamp(cos_angle, -1.0, 1.0))) +
         standing_knee_flexion_deg;
}

double KneeValgusDeg(const Vec3& thigh_axis, const Vec3& shank_axis,
                     StanceSide stance_side) {
  // As the simulator's truth: the knee moving toward the free side is medial.
  const double free_side_x = FreeSideX(stance_side);
  const Vec3& s = shank_axis;
  const Vec3& t = thigh_axis;
  return free_side_x *
         RadToDeg(std::atan2(s.x * t.z - s.z * t.x, s.x * t.x + s.z * t.z));
}

double ElevationFromHangingDeg(const Vec3& long_axis) {
  return RadToDeg(
      std::acos(std::clamp(long_axis.z / Norm(long_axis), -1.0, 1.0)));
}

}  // namespace stephub::scoring
