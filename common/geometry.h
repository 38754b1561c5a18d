// Minimal 3-D vector, rotation-matrix and unit-quaternion helpers for the
// simulator and the scoring numerics (header-only, no dependencies).
#ifndef STEPHUB_COMMON_GEOMETRY_H_
#define STEPHUB_COMMON_GEOMETRY_H_

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>

namespace stephub {

inline constexpr double kPi = std::numbers::pi;

inline constexpr double DegToRad(double deg) { return deg * kPi / 180.0; }
inline constexpr double RadToDeg(double rad) { return rad * 180.0 / kPi; }

struct Vec3 {
  double x = 0, y = 0, z = 0;

  Vec3& operator+=(const Vec3& o) {
    x += o.x;
    y += o.y;
    z += o.z;
    return *this;
  }
  Vec3& operator-=(const Vec3& o) {
    x -= o.x;
    y -= o.y;
    z -= o.z;
    return *this;
  }
};

inline Vec3 operator+(Vec3 a, const Vec3& b) { return a += b; }
inline Vec3 operator-(Vec3 a, const Vec3& b) { return a -= b; }
inline Vec3 operator-(const Vec3& a) { return {-a.x, -a.y, -a.z}; }
inline Vec3 operator*(const Vec3& a, double s) {
  return {a.x * s, a.y * s, a.z * s};
}
inline Vec3 operator*(double s, const Vec3& a) { return a * s; }
inline Vec3 operator/(const Vec3& a, double s) {
  return {a.x / s, a.y / s, a.z / s};
}

inline double Dot(const Vec3& a, const Vec3& b) {
  return a.x * b.x + a.y * b.y + a.z * b.z;
}
inline Vec3 Cross(const Vec3& a, const Vec3& b) {
  return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x};
}
inline double Norm(const Vec3& a) { return std::sqrt(Dot(a, a)); }
inline Vec3 Normalized(const Vec3& a) { return a / Norm(a); }

// Row-major 3x3 matrix. As a rotation it maps body-frame coordinates to
// world-frame coordinates, so its columns are the body axes in the world.
struct Mat3 {
  std::array<std::array<double, 3>, 3> m{};

  static Mat3 Identity() { return FromRows({1, 0, 0}, {0, 1, 0}, {0, 0, 1}); }
  static Mat3 FromRows(const Vec3& r0, const Vec3& r1, const Vec3& r2) {
    Mat3 out;
    out.m = {{{r0.x, r0.y, r0.z}, {r1.x, r1.y, r1.z}, {r2.x, r2.y, r2.z}}};
    return out;
  }
  Vec3 Row(int i) const { return {m[i][0], m[i][1], m[i][2]}; }
  Vec3 Column(int j) const { return {m[0][j], m[1][j], m[2][j]}; }
};

inline Vec3 operator*(const Mat3& a, const Vec3& v) {
  return {Dot(a.Row(0), v), Dot(a.Row(1), v), Dot(a.Row(2), v)};
}
inline Mat3 operator*(const Mat3& a, const Mat3& b) {
  Mat3 out;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      out.m[i][j] = Dot(a.Row(i), b.Column(j));
    }
  }
  return out;
}
inline Mat3 Transpose(const Mat3& a) {
  return Mat3::FromRows(a.Column(0), a.Column(1), a.Column(2));
}

// Right-handed rotations about the frame's own axes (angles in radians).
inline Mat3 RotX(double a) {
  const double c = std::cos(a), s = std::sin(a);
  return Mat3::FromRows({1, 0, 0}, {0, c, -s}, {0, s, c});
}
inline Mat3 RotY(double a) {
  const double c = std::cos(a), s = std::sin(a);
  return Mat3::FromRows({c, 0, s}, {0, 1, 0}, {-s, 0, c});
}
inline Mat3 RotZ(double a) {
  const double c = std::cos(a), s = std::sin(a);
  return Mat3::FromRows({c, -s, 0}, {s, c, 0}, {0, 0, 1});
}

// Hamilton unit quaternion; as an attitude it rotates body to world.
struct Quaternion {
  double w = 1, x = 0, y = 0, z = 0;
};

inline Quaternion operator*(const Quaternion& a, const Quaternion& b) {
  return {a.w * b.w - a.x * b.x - a.y * b.y - a.z * b.z,
          a.w * b.x + a.x * b.w + a.y * b.z - a.z * b.y,
          a.w * b.y - a.x * b.z + a.y * b.w + a.z * b.x,
          a.w * b.z + a.x * b.y - a.y * b.x + a.z * b.w};
}
inline Quaternion Conjugate(const Quaternion& q) {
  return {q.w, -q.x, -q.y, -q.z};
}
inline Quaternion Normalized(const Quaternion& q) {
  const double n = std::sqrt(q.w * q.w + q.x * q.x + q.y * q.y + q.z * q.z);
  return {q.w / n, q.x / n, q.y / n, q.z / n};
}

inline Mat3 ToMatrix(const Quaternion& q) {
  const double w = q.w, x = q.x, y = q.y, z = q.z;
  return Mat3::FromRows(
      {1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)},
      {2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)},
      {2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)});
}

// Rotates v by q (body to world for an attitude quaternion).
inline Vec3 Rotate(const Quaternion& q, const Vec3& v) {
  const Vec3 u{q.x, q.y, q.z};
  const Vec3 t = 2.0 * Cross(u, v);
  return v + q.w * t + Cross(u, t);
}

// Shepperd's method: branch on the largest diagonal term so that the square
// root never takes a small, cancellation-prone argument.
inline Quaternion FromMatrix(const Mat3& r) {
  const auto& m = r.m;
  const double trace = m[0][0] + m[1][1] + m[2][2];
  Quaternion q;
  if (trace > 0) {
    const double s = 2 * std::sqrt(1 + trace);
    q = {s / 4, (m[2][1] - m[1][2]) / s, (m[0][2] - m[2][0]) / s,
         (m[1][0] - m[0][1]) / s};
  } else if (m[0][0] > m[1][1] && m[0][0] > m[2][2]) {
    const double s = 2 * std::sqrt(1 + m[0][0] - m[1][1] - m[2][2]);
    q = {(m[2][1] - m[1][2]) / s, s / 4, (m[0][1] + m[1][0]) / s,
         (m[0][2] + m[2][0]) / s};
  } else if (m[1][1] > m[2][2]) {
    const double s = 2 * std::sqrt(1 + m[1][1] - m[0][0] - m[2][2]);
    q = {(m[0][2] - m[2][0]) / s, (m[0][1] + m[1][0]) / s, s / 4,
         (m[1][2] + m[2][1]) / s};
  } else {
    const double s = 2 * std::sqrt(1 + m[2][2] - m[0][0] - m[1][1]);
    q = {(m[1][0] - m[0][1]) / s, (m[0][2] + m[2][0]) / s,
         (m[1][2] + m[2][1]) / s, s / 4};
  }
  return Normalized(q);
}

// Exponential map: rotation by |v| radians about v.
inline Quaternion FromRotationVector(const Vec3& v) {
  const double angle = Norm(v);
  // sin(angle/2)/angle, by its Taylor series near zero to avoid 0/0.
  const double k =
      angle < 1e-6 ? 0.5 - angle * angle / 48.0 : std::sin(angle / 2) / angle;
  return Normalized({std::cos(angle / 2), v.x * k, v.y * k, v.z * k});
}

// Logarithm map, the inverse of FromRotationVector (angle in [0, pi]).
inline Vec3 ToRotationVector(const Quaternion& q_in) {
  const Quaternion q =
      q_in.w < 0 ? Quaternion{-q_in.w, -q_in.x, -q_in.y, -q_in.z} : q_in;
  const Vec3 u{q.x, q.y, q.z};
  const double s = Norm(u);
  if (s < 1e-9) return 2.0 * u / q.w;
  return u * (2 * std::atan2(s, q.w) / s);
}

// Elevation above the horizontal plane (world z up) of a unit vector, rad.
inline double Elevation(const Vec3& world_unit) {
  return std::asin(std::clamp(world_unit.z, -1.0, 1.0));
}

}  // namespace stephub

#endif  // STEPHUB_COMMON_GEOMETRY_H_
