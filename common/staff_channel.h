// A channel to the hub for staff tools (the CLI, tests): every call on it
// carries the signed-in person's bearer token, on TLS and plaintext
// (--insecure-dev) channels alike, which gRPC's call credentials do not.
#ifndef STEPHUB_COMMON_STAFF_CHANNEL_H_
#define STEPHUB_COMMON_STAFF_CHANNEL_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace stephub {

// `token` empty: calls go without one (Auth.Login needs none).
std::shared_ptr<grpc::Channel> CreateStaffChannel(
    const std::string& target,
    const std::shared_ptr<grpc::ChannelCredentials>& credentials,
    const std::string& token,
    const grpc::ChannelArguments& args = grpc::ChannelArguments());

}  // namespace stephub

#endif  // STEPHUB_COMMON_STAFF_CHANNEL_H_
