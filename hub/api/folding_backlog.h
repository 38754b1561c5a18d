// Whether the hub's sample folder keeps up with the stations: a folder that
// has not once run out of due minutes for a while is short of CPU, and the
// clinic's IT person should hear of it (raw rows then stay on disk longer
// and the database grows, though nothing is lost). Pure: the caller says
// when each pass ended, on a clock that does not jump (the hub's is
// monotonic).
#ifndef STEPHUB_HUB_API_FOLDING_BACKLOG_H_
#define STEPHUB_HUB_API_FOLDING_BACKLOG_H_

#include "absl/time/time.h"

namespace stephub::api {

class FoldingBacklog {
 public:
  enum class Change { kNone, kFellBehind, kCaughtUp };

  // Behind means: no pass has found the due minutes all folded for longer
  // than `tolerated`, counted from `start`.
  FoldingBacklog(absl::Time start, absl::Duration tolerated)
      : caught_up_at_(start), tolerated_(tolerated) {}

  // A folding pass that ended at `now`; `more_due` when it stopped at its
  // limit with minutes still due. Says when the folder has just fallen
  // behind or, having been behind, caught up (each once).
  Change PassDone(absl::Time now, bool more_due);

  // A pass that failed: the failure is reported on its own, and the time
  // behind counts again from `now`, so that a folder held up by it is not
  // later said to be short of CPU.
  void PassFailed(absl::Time now) { caught_up_at_ = now; }

  // Since the folder last had nothing due (at `now`), or a pass failed.
  absl::Duration BehindFor(absl::Time now) const { return now - caught_up_at_; }

 private:
  absl::Time caught_up_at_;
  const absl::Duration tolerated_;
  bool reported_behind_ = false;
};

}  // namespace stephub::api

#endif  // STEPHUB_HUB_API_FOLDING_BACKLOG_H_
