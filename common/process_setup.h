// Process-wide settings shared by the long-running binaries: the hub, the
// station daemon, and the load benchmark's generator and sink (so that the
// hub and its bare-gRPC yardstick run under the same rules).
#ifndef STEPHUB_COMMON_PROCESS_SETUP_H_
#define STEPHUB_COMMON_PROCESS_SETUP_H_

namespace stephub {

// Call first in main, before any thread starts.
void ConfigureServingProcess();

}  // namespace stephub

#endif  // STEPHUB_COMMON_PROCESS_SETUP_H_
