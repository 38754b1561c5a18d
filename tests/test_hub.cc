// In-process test hubs with a staff account; see test_hub.h.
#include "tests/test_hub.h"

#include "tests/testing.h"

namespace stephub::testing {

absl::Status AddTestStaff(const std::string& data_dir) {
  const absl::Status added =
      api::AddStaffAccount(data_dir, kTestStaffUser, "Test Staff",
                           auth::kTherapist | auth::kAdmin, kTestStaffPassword);
  return absl::IsAlreadyExists(added) ? absl::OkStatus() : added;
}

absl::StatusOr<std::unique_ptr<api::HubServer>> StartHub(
    const api::HubOptions& options) {
  if (auto s = AddTestStaff(options.data_dir); !s.ok()) return s;
  return api::HubServer::Start(options);
}

}  // namespace stephub::testing
