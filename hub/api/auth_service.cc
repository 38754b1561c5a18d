// Auth service and the per-call authorization; see auth_service.h.
#include "hub/api/auth_service.h"

#include <google/protobuf/util/time_util.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace stephub::api {
namespace {

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      std::string(s.message()));
}

void SetTime(absl::Time t, google::protobuf::Timestamp* out) {
  *out = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
      absl::ToUnixMicros(t));
}

}  // namespace

grpc::Status AuthorizeCall(auth::StaffAccounts& accounts,
                           const grpc::ServerContextBase& context,
                           auth::RoleSet allowed, auth::Caller* caller) {
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find("authorization");
  const absl::string_view header =
      it == metadata.end()
          ? absl::string_view()
          : absl::string_view(it->second.data(), it->second.size());
  auto authorized = accounts.Authorize(header, allowed);
  if (!authorized.ok()) return ToGrpc(authorized.status());
  *caller = std::move(*authorized);
  return grpc::Status::OK;
}

auth::RoleSet RolesFromProto(
    const google::protobuf::RepeatedField<int>& roles) {
  auth::RoleSet out = 0;
  for (int role : roles) {
    switch (role) {
      case v1::ROLE_THERAPIST:
        out |= auth::kTherapist;
        break;
      case v1::ROLE_ADMIN:
        out |= auth::kAdmin;
        break;
      default:
        // Not a role StaffAccounts knows: refused there as "no role".
        out |= 1u << 31;
    }
  }
  return out;
}

v1::StaffUser StaffUserToProto(const store::StaffUserRecord& user) {
  v1::StaffUser out;
  out.set_username(user.username);
  out.set_display_name(user.display_name);
  if (user.roles & auth::kTherapist) out.add_roles(v1::ROLE_THERAPIST);
  if (user.roles & auth::kAdmin) out.add_roles(v1::ROLE_ADMIN);
  out.set_disabled(user.disabled);
  SetTime(user.created_at, out.mutable_created_at());
  return out;
}

grpc::Status AuthService::Login(grpc::ServerContext*,
                                const v1::LoginRequest* request,
                                v1::LoginResponse* response) {
  auto signed_in = accounts_.Login(request->username(), request->password(),
                                   request->client());
  if (!signed_in.ok()) return ToGrpc(signed_in.status());
  response->set_token(signed_in->token);
  SetTime(signed_in->expires_at, response->mutable_expires_at());
  *response->mutable_user() = StaffUserToProto(signed_in->user);
  return grpc::Status::OK;
}

grpc::Status AuthService::Logout(grpc::ServerContext* context,
                                 const v1::LogoutRequest*,
                                 v1::LogoutResponse*) {
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context, auth::kAnyStaff, &caller);
      !s.ok()) {
    return s;
  }
  return ToGrpc(accounts_.Logout(caller));
}

grpc::Status AuthService::WhoAmI(grpc::ServerContext* context,
                                 const v1::WhoAmIRequest*,
                                 v1::StaffUser* response) {
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context, auth::kAnyStaff, &caller);
      !s.ok()) {
    return s;
  }
  auto user = accounts_.GetUser(caller.username);
  if (!user.ok()) return ToGrpc(user.status());
  *response = StaffUserToProto(*user);
  return grpc::Status::OK;
}

grpc::Status AuthService::AddUser(grpc::ServerContext* context,
                                  const v1::AddUserRequest* request,
                                  v1::StaffUser* response) {
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context, auth::kAdmin, &caller);
      !s.ok()) {
    return s;
  }
  auto user =
      accounts_.AddUser(request->username(), request->display_name(),
                        RolesFromProto(request->roles()), request->password());
  if (!user.ok()) return ToGrpc(user.status());
  *response = StaffUserToProto(*user);
  return ToGrpc(accounts_.Audit(
      caller, "user_added", 0,
      absl::StrCat(user->username, " as ", auth::RoleNames(user->roles))));
}

grpc::Status AuthService::ListUsers(grpc::ServerContext* context,
                                    const v1::ListUsersRequest*,
                                    v1::ListUsersResponse* response) {
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context, auth::kAdmin, &caller);
      !s.ok()) {
    return s;
  }
  auto users = accounts_.ListUsers();
  if (!users.ok()) return ToGrpc(users.status());
  for (const auto& user : *users) {
    *response->add_users() = StaffUserToProto(user);
  }
  return grpc::Status::OK;
}

grpc::Status AuthService::SetUserDisabled(
    grpc::ServerContext* context, const v1::SetUserDisabledRequest* request,
    v1::StaffUser* response) {
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context, auth::kAdmin, &caller);
      !s.ok()) {
    return s;
  }
  if (request->disabled() && request->username() == caller.username) {
    // The last admin locking everyone out is a support call; another admin
    // can disable this account.
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "you cannot disable your own account");
  }
  auto user = accounts_.SetDisabled(request->username(), request->disabled());
  if (!user.ok()) return ToGrpc(user.status());
  *response = StaffUserToProto(*user);
  return ToGrpc(accounts_.Audit(
      caller, request->disabled() ? "user_disabled" : "user_enabled", 0,
      user->username));
}

grpc::Status AuthService::ChangePassword(
    grpc::ServerContext* context, const v1::ChangePasswordRequest* request,
    v1::ChangePasswordResponse*) {
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context, auth::kAnyStaff, &caller);
      !s.ok()) {
    return s;
  }
  const std::string& username =
      request->username().empty() ? caller.username : request->username();
  if (username == caller.username) {
    // A session left open on a shared PC must not be enough to take the
    // account over.
    if (auto s = accounts_.CheckPassword(username, request->current_password());
        !s.ok()) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          "the current password is wrong");
    }
  } else if ((caller.roles & auth::kAdmin) == 0) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "only an admin can set another user's password");
  }
  if (auto s = accounts_.SetPassword(username, request->new_password());
      !s.ok()) {
    return ToGrpc(s);
  }
  return ToGrpc(accounts_.Audit(caller, "password_changed", 0, username));
}

grpc::Status AuthService::ListAudit(grpc::ServerContext* context,
                                    const v1::ListAuditRequest* request,
                                    v1::ListAuditResponse* response) {
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context, auth::kAdmin, &caller);
      !s.ok()) {
    return s;
  }
  if (request->limit() < 0 || request->limit() > 1000) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "limit must be 1 to 1000 (0: 100)");
  }
  if (request->patient_id() < 0 || request->before_id() < 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "patient_id and before_id must not be negative");
  }
  auto page =
      accounts_.AuditPage(request->patient_id(), request->before_id(),
                          request->limit() == 0 ? 100 : request->limit());
  if (!page.ok()) return ToGrpc(page.status());
  for (const auto& entry : *page) {
    v1::AuditEntry* out = response->add_entries();
    out->set_audit_id(entry.audit_id);
    SetTime(entry.time, out->mutable_time());
    out->set_username(entry.username);
    out->set_action(entry.action);
    out->set_patient_id(entry.patient_id);
    out->set_detail(entry.detail);
  }
  return grpc::Status::OK;
}

}  // namespace stephub::api
