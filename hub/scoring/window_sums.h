// Running sums over a sliding window of samples, kept in step with the
// deque that holds the samples: the stillness detectors' window means and
// scatters (and those of its halves) in O(1) per sample instead of a pass
// over up to 1.5 s of them.
#ifndef STEPHUB_HUB_SCORING_WINDOW_SUMS_H_
#define STEPHUB_HUB_SCORING_WINDOW_SUMS_H_

#include <array>
#include <cstddef>
#include <deque>

namespace stephub::scoring {

template <size_t K>
class WindowSums {
 public:
  using Values = std::array<double, K>;

  void Clear() {
    cumulative_.clear();
    base_ = {};
    pushes_ = 0;
  }
  void PushBack(const Values& v) {
    Values c = cumulative_.empty() ? base_ : cumulative_.back();
    for (size_t k = 0; k < K; ++k) c[k] += v[k];
    cumulative_.push_back(c);
    if (++pushes_ >= kRebaseEvery) Rebase();
  }
  void PopFront() {
    base_ = cumulative_.front();
    cumulative_.pop_front();
  }
  size_t size() const { return cumulative_.size(); }
  // The sums over the window's samples [from, to).
  Values Sum(size_t from, size_t to) const {
    const Values& lo = from == 0 ? base_ : cumulative_[from - 1];
    const Values& hi = to == 0 ? base_ : cumulative_[to - 1];
    Values s;
    for (size_t k = 0; k < K; ++k) s[k] = hi[k] - lo[k];
    return s;
  }

 private:
  // The cumulative sums grow for as long as the window slides without a
  // break; taking the part before the window off now and then keeps their
  // rounding at the scale of a few windows.
  static constexpr size_t kRebaseEvery = size_t{1} << 16;
  void Rebase() {
    for (Values& c : cumulative_) {
      for (size_t k = 0; k < K; ++k) c[k] -= base_[k];
    }
    base_ = {};
    pushes_ = 0;
  }

  std::deque<Values> cumulative_;  // [i]: everything pushed up to sample i
  Values base_{};                  // everything pushed before the window
  size_t pushes_ = 0;
};

}  // namespace stephub::scoring

#endif  // STEPHUB_HUB_SCORING_WINDOW_SUMS_H_
