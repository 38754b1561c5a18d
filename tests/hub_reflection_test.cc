// Generic tools can talk to the hub: server reflection lists its five
// services and the standard health service answers SERVING. Runs the real
// stephub-hub binary on a loopback port of its choosing.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <set>
#include <string>

#include "health_client.grpc.pb.h"
#include "reflection_client.grpc.pb.h"
#include "tests/testing.h"

namespace stephub {
namespace {

// stephub-hub as a child process; stopped with SIGTERM on destruction.
class HubProcess {
 public:
  explicit HubProcess(const std::string& data_dir) {
    // Made before the fork: the child must use the parent's test CA.
    const std::vector<std::string> tls = testing::HubTlsFlags();
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      const std::string dir_flag = "--data_dir=" + data_dir;
      execl(STEPHUB_HUB_BINARY, STEPHUB_HUB_BINARY, "--listen=127.0.0.1:0",
            "--web_listen=127.0.0.1:0", dir_flag.c_str(), tls[0].c_str(),
            tls[1].c_str(), tls[2].c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    // The hub's first line says where it listens.
    FILE* out = fdopen(fds[0], "r");
    char line[512];
    if (out && fgets(line, sizeof line, out)) {
      std::string text(line);
      auto at = text.find("port ");
      if (at != std::string::npos) port_ = std::atoi(text.c_str() + at + 5);
    }
    // Kept open while the hub runs: it goes on writing to it.
    out_ = out;
  }
  ~HubProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    if (out_) fclose(out_);
  }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  FILE* out_ = nullptr;
};

TEST(HubReflection, ListsTheSixServicesAndHealthIsServing) {
  testing::TempDir dir;
  HubProcess hub(dir.path());
  ASSERT_GT(hub.port(), 0) << "stephub-hub did not report its port";
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(hub.port()),
                                     testing::StaffCredentials());

  auto reflection =
      grpc::reflection::v1alpha::ServerReflection::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = reflection->ServerReflectionInfo(&ctx);
  grpc::reflection::v1alpha::ServerReflectionRequest request;
  request.set_list_services("");
  ASSERT_TRUE(stream->Write(request));
  grpc::reflection::v1alpha::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  std::set<std::string> services;
  for (const auto& s : response.list_services_response().service()) {
    services.insert(s.name());
  }
  for (const char* name :
       {"stephub.v1.StationLink", "stephub.v1.Clinic", "stephub.v1.Dashboard",
        "stephub.v1.Reports", "stephub.v1.Maintenance", "stephub.v1.Auth"}) {
    EXPECT_TRUE(services.count(name)) << name << " missing from reflection";
  }
  // The descriptors themselves are served, so tools can build requests.
  request.set_file_containing_symbol("stephub.v1.Clinic");
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_GT(response.file_descriptor_response().file_descriptor_proto_size(),
            0);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());

  auto health = grpc::health::v1::Health::NewStub(channel);
  grpc::health::v1::HealthCheckResponse status;
  grpc::ClientContext health_ctx;
  health_ctx.set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(10));
  ASSERT_TRUE(health->Check(&health_ctx, {}, &status).ok());
  EXPECT_EQ(status.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

}  // namespace
}  // namespace stephub
