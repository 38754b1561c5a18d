// libFuzzer target: the web dashboard's request handling. Raw bytes go
// through the same Beast parser limits and routing as a connection's
// request (web::WebRequestHandler), with the hub's services behind an
// in-process gRPC channel: a stand-in Auth that knows one signed-in
// session, so that the signed-in routes and the CSRF check are reached;
// the other services are absent and answer UNIMPLEMENTED, which the
// routing maps like any refusal. No sockets.
#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "hub/web/web_server.h"
#include "stephub/v1/auth.grpc.pb.h"

namespace {

// The token the dictionary and seeds use in their session cookie.
constexpr char kToken[] = "fuzz-session-token";

class FakeAuth final : public stephub::v1::Auth::Service {
  grpc::Status Login(grpc::ServerContext*,
                     const stephub::v1::LoginRequest* request,
                     stephub::v1::LoginResponse* response) override {
    if (request->username() != "therapist") {
      return {grpc::StatusCode::UNAUTHENTICATED, "unknown user or password"};
    }
    response->set_token(kToken);
    response->mutable_user()->set_username("therapist");
    return grpc::Status::OK;
  }
  grpc::Status WhoAmI(grpc::ServerContext* context,
                      const stephub::v1::WhoAmIRequest*,
                      stephub::v1::StaffUser* user) override {
    const auto& metadata = context->client_metadata();
    const auto it = metadata.find("authorization");
    if (it == metadata.end() ||
        absl::string_view(it->second.data(), it->second.size()) !=
            std::string("Bearer ") + kToken) {
      return {grpc::StatusCode::UNAUTHENTICATED, "sign in first"};
    }
    user->set_username("therapist");
    return grpc::Status::OK;
  }
};

struct Hub {
  FakeAuth auth;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<stephub::web::WebRequestHandler> handler;

  Hub() {
    grpc::ServerBuilder builder;
    builder.RegisterService(&auth);
    server = builder.BuildAndStart();
    stephub::web::WebOptions options;
    handler = std::make_unique<stephub::web::WebRequestHandler>(
        options, server->InProcessChannel(grpc::ChannelArguments()));
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // One hub for the whole run, as one server answers many requests; never
  // destroyed, so its threads do not race the process's exit.
  static Hub* hub = new Hub;
  hub->handler->Answer(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
