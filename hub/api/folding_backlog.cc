// FoldingBacklog: the folder's "behind" and "caught up" transitions.
#include "hub/api/folding_backlog.h"

namespace stephub::api {

FoldingBacklog::Change FoldingBacklog::PassDone(absl::Time now, bool more_due) {
  if (!more_due) {
    caught_up_at_ = now;
    if (!reported_behind_) return Change::kNone;
    reported_behind_ = false;
    return Change::kCaughtUp;
  }
  if (reported_behind_ || now - caught_up_at_ <= tolerated_) {
    return Change::kNone;
  }
  reported_behind_ = true;
  return Change::kFellBehind;
}

}  // namespace stephub::api
