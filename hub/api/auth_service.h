// The Auth service (sign-in, staff accounts, the audit log) and the check
// every other staff call starts with: who is calling, with which role.
#ifndef STEPHUB_HUB_API_AUTH_SERVICE_H_
#define STEPHUB_HUB_API_AUTH_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "hub/auth/staff_accounts.h"
#include "stephub/v1/auth.grpc.pb.h"

namespace stephub::api {

// The caller's bearer token ("authorization" metadata) checked for one of
// `allowed`; fills `caller`. UNAUTHENTICATED, PERMISSION_DENIED or
// RESOURCE_EXHAUSTED with a message that says what to do.
grpc::Status AuthorizeCall(auth::StaffAccounts& accounts,
                           const grpc::ServerContextBase& context,
                           auth::RoleSet allowed, auth::Caller* caller);

// A bit set of auth roles from the proto's, and back.
auth::RoleSet RolesFromProto(const google::protobuf::RepeatedField<int>& roles);
v1::StaffUser StaffUserToProto(const store::StaffUserRecord& user);

class AuthService final : public v1::Auth::Service {
 public:
  explicit AuthService(auth::StaffAccounts& accounts) : accounts_(accounts) {}

  grpc::Status Login(grpc::ServerContext* context,
                     const v1::LoginRequest* request,
                     v1::LoginResponse* response) override;
  grpc::Status Logout(grpc::ServerContext* context,
                      const v1::LogoutRequest* request,
                      v1::LogoutResponse* response) override;
  grpc::Status WhoAmI(grpc::ServerContext* context,
                      const v1::WhoAmIRequest* request,
                      v1::StaffUser* response) override;
  grpc::Status AddUser(grpc::ServerContext* context,
                       const v1::AddUserRequest* request,
                       v1::StaffUser* response) override;
  grpc::Status ListUsers(grpc::ServerContext* context,
                         const v1::ListUsersRequest* request,
                         v1::ListUsersResponse* response) override;
  grpc::Status SetUserDisabled(grpc::ServerContext* context,
                               const v1::SetUserDisabledRequest* request,
                               v1::StaffUser* response) override;
  grpc::Status ChangePassword(grpc::ServerContext* context,
                              const v1::ChangePasswordRequest* request,
                              v1::ChangePasswordResponse* response) override;
  grpc::Status ListAudit(grpc::ServerContext* context,
                         const v1::ListAuditRequest* request,
                         v1::ListAuditResponse* response) override;

 private:
  auth::StaffAccounts& accounts_;
};

}  // namespace stephub::api

#endif  // STEPHUB_HUB_API_AUTH_SERVICE_H_
