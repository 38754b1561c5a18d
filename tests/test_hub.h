// Starting in-process hubs for tests, with the test staff account in their
// database so that StaffChannel can sign in.
#ifndef STEPHUB_TESTS_TEST_HUB_H_
#define STEPHUB_TESTS_TEST_HUB_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "hub/api/hub_server.h"

namespace stephub::testing {

// Adds testing::kTestStaffUser (therapist and admin) to the database under
// `data_dir`, unless it is there already. For hubs run as child processes
// too.
absl::Status AddTestStaff(const std::string& data_dir);

// AddTestStaff(options.data_dir), then api::HubServer::Start(options).
absl::StatusOr<std::unique_ptr<api::HubServer>> StartHub(
    const api::HubOptions& options);

}  // namespace stephub::testing

#endif  // STEPHUB_TESTS_TEST_HUB_H_
