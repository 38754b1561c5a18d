// See process_setup.h.
#include "common/process_setup.h"

#include "absl/synchronization/mutex.h"

namespace stephub {

void ConfigureServingProcess() {
  // Debian builds Abseil without NDEBUG, so every absl::Mutex lock (gRPC
  // takes several per message) also updates a lock-order graph to detect
  // deadlocks: about 3 % of the hub's CPU under load, for a check meant
  // for debugging. The sanitizer and fuzzing builds keep it.
#ifndef STEPHUB_KEEP_MUTEX_DEADLOCK_DETECTION
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
}

}  // namespace stephub
