// Angles of body segments from calibrated IMU orientations, in the truth's
// conventions (RECORDING_FORMAT.md): obliquity of a segment's mediolateral
// axis, its forward tilt, and the knee's flexion and frontal-plane angle.
#ifndef STEPHUB_HUB_SCORING_SEGMENT_ANGLES_H_
#define STEPHUB_HUB_SCORING_SEGMENT_ANGLES_H_

#include "common/geometry.h"
#include "common/samples.h"
#include "hub/scoring/calibration.h"

namespace stephub::scoring {

struct SegmentAngles {
  // Elevation of the segment's right (mediolateral) axis above horizontal.
  double ml_elevation_deg = 0;
  double forward_tilt_deg = 0;  // relative to standing
  // The segment's long axis in its sensor's world frame. Standing, the
  // segment counts as upright, so this is the standing "up" carried along:
  // a standing pose cannot reveal how the sensor sits on the segment.
  Vec3 long_axis;
};

SegmentAngles SegmentAnglesOf(const Quaternion& sensor_to_world,
                              const StandingPosture& standing);

// An elevation of the mediolateral axis turned into "toward the free side":
// + when the free-leg side is lower (pelvic drop, trunk lean).
double TowardFreeSideDeg(double ml_elevation_deg, StanceSide stance_side);

// Angle between the thigh's and the shank's long axes, plus the knee's
// assumed flexion when standing (which the sensors cannot see).
double KneeFlexionDeg(const Vec3& thigh_axis, const Vec3& shank_axis,
                      double standing_knee_flexion_deg);

// Frontal-plane (world x-z) angle between shank and thigh, + when the knee
// lies medial of the ankle-hip line (valgus). Both axes point up the leg;
// standing, both are vertical, so this is already relative to standing.
double KneeValgusDeg(const Vec3& thigh_axis, const Vec3& shank_axis,
                     StanceSide stance_side);

// Angle of a segment's long axis (in its sensor's world frame, z up) from
// the vertical, deg. For a wrist IMU, whose standing "up" is the hanging
// forearm's axis, this is how far the arm is lifted from hanging, in any
// direction, whatever its heading or its turn about its own axis.
double ElevationFromHangingDeg(const Vec3& long_axis);

}  // namespace stephub::scoring

#endif  // STEPHUB_HUB_SCORING_SEGMENT_ANGLES_H_
