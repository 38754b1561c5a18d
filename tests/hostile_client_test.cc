// A hub under attack from its own network: while honest stations stream,
// other clients send bytes that are no protobuf, messages past the receive
// limit, bad samples, a flood of streams over many connections, and a
// station that never reads what the hub sends. Afterwards every batch the
// honest stations had acknowledged is in the store and the hub still
// answers.
#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/staff_channel.h"
#include "hub/api/hub_server.h"
#include "hub/store/store.h"
#include "stephub/v1/auth.grpc.pb.h"
#include "stephub/v1/clinic.grpc.pb.h"
#include "stephub/v1/station_link.grpc.pb.h"
#include "tests/test_hub.h"
#include "tests/testing.h"

namespace stephub {
namespace {

using Stream = grpc::ClientReaderWriter<v1::StationMessage, v1::HubMessage>;

constexpr int kHonestStations = 3;
constexpr uint64_t kHonestBatches = 80;

std::chrono::system_clock::time_point Deadline(int seconds) {
  return std::chrono::system_clock::now() + std::chrono::seconds(seconds);
}

// A channel on a connection of its own: channels with equal arguments
// would share one, and the flood is meant to open many.
std::shared_ptr<grpc::Channel> OwnConnection(int port, int index) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetString("stephub.test.connection", std::to_string(index));
  return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials(), args);
}

v1::StationMessage HelloMessage(const std::string& station_id) {
  v1::StationMessage m;
  *m.mutable_hello() = testing::SacrumHello(station_id, "boot-1");
  return m;
}

v1::StationMessage BatchMessage(uint64_t seq, int samples) {
  v1::StationMessage m;
  *m.mutable_batch() = testing::StandingBatch(
      seq, static_cast<int64_t>(seq) * 1'000'000, samples);
  return m;
}

// Streams kHonestBatches batches and reads every ack; returns the highest
// durable seq the hub acknowledged.
uint64_t RunHonestStation(int port, int index, grpc::Status* status) {
  auto stub = v1::StationLink::NewStub(OwnConnection(port, 1000 + index));
  grpc::ClientContext context;
  context.set_deadline(Deadline(60));
  std::unique_ptr<Stream> stream = stub->Stream(&context);
  std::atomic<uint64_t> acked{0};
  std::thread reader([&] {
    v1::HubMessage in;
    while (stream->Read(&in)) {
      if (in.has_ack()) acked = in.ack().durable_seq();
    }
  });
  bool ok = stream->Write(HelloMessage("honest-" + std::to_string(index)));
  for (uint64_t seq = 1; ok && seq <= kHonestBatches; ++seq) {
    ok = stream->Write(BatchMessage(seq, 40));
    // At a station's pace, so that the hostile clients run alongside.
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stream->WritesDone();
  reader.join();
  *status = stream->Finish();
  return acked;
}

// Sends `payload` as the one message of a StationLink stream, bypassing
// protobuf: what a client with a broken (or malicious) encoder sends.
grpc::Status SendRawBytes(grpc::GenericStub& stub, const std::string& payload) {
  grpc::ClientContext context;
  context.set_deadline(Deadline(20));
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&context, "/stephub.v1.StationLink/Stream", &cq);
  grpc::Slice slice(payload);
  grpc::ByteBuffer buffer(&slice, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  void* tag = nullptr;
  bool ok = false;
  // Each step waits for its own completion; a step that fails skips to
  // Finish, which always completes.
  call->StartCall(reinterpret_cast<void*>(1));
  if (cq.Next(&tag, &ok) && ok) {
    call->Write(buffer, reinterpret_cast<void*>(2));
    if (cq.Next(&tag, &ok) && ok) {
      call->Read(&response, reinterpret_cast<void*>(3));
      cq.Next(&tag, &ok);
    }
  }
  call->Finish(&status, reinterpret_cast<void*>(4));
  while (cq.Next(&tag, &ok) && tag != reinterpret_cast<void*>(4)) {
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

// One stream with a hello and then `message`; the stream's status.
grpc::Status SendAfterHello(v1::StationLink::Stub& stub,
                            const std::string& station_id,
                            const v1::StationMessage& message) {
  grpc::ClientContext context;
  context.set_deadline(Deadline(20));
  auto stream = stub.Stream(&context);
  stream->Write(HelloMessage(station_id));
  stream->Write(message);
  stream->WritesDone();
  v1::HubMessage in;
  while (stream->Read(&in)) {
  }
  return stream->Finish();
}

class HostileClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    api::HubOptions options;
    options.listen_address = "127.0.0.1:0";
    options.data_dir = dir_.path();
    // Exactly the stations this test names: 3 honest, 300 in the flood,
    // hostile-big, hostile-mute and after-attack.
    options.max_stations = kHonestStations + 300 + 3;
    // Plaintext, every station id admitted: what is under test is what the
    // hub does with what a client sends once it is connected (the flood
    // puts 30 station ids on each connection, which station certificates
    // would refuse outright; transport_security_test covers those).
    options.insecure_dev = true;
    auto hub = testing::StartHub(options);
    ASSERT_TRUE(hub.ok()) << hub.status();
    hub_ = std::move(*hub);
    port_ = hub_->port();
  }

  testing::TempDir dir_;
  std::unique_ptr<api::HubServer> hub_;
  int port_ = 0;
};

TEST_F(HostileClientTest, HonestStationsKeepEveryAcknowledgedBatch) {
  std::atomic<bool> honest_done{false};
  std::vector<grpc::Status> honest_status(kHonestStations);
  std::vector<uint64_t> honest_acked(kHonestStations, 0);
  std::vector<std::thread> honest;
  for (int i = 0; i < kHonestStations; ++i) {
    honest.emplace_back([&, i] {
      honest_acked[i] = RunHonestStation(port_, i, &honest_status[i]);
    });
  }

  // Bytes that are no StationMessage, and a message past the 1 MiB limit.
  std::vector<grpc::Status> garbage;
  std::vector<grpc::Status> oversized;
  std::thread malformed([&] {
    grpc::GenericStub generic(OwnConnection(port_, 1));
    auto stub = v1::StationLink::NewStub(OwnConnection(port_, 2));
    for (int i = 0; i < 20; ++i) {
      // Field 1 (hello) as a length-delimited field longer than the message.
      garbage.push_back(
          SendRawBytes(generic, std::string("\x0a\xff\x01zz", 5)));
      oversized.push_back(
          SendAfterHello(*stub, "hostile-big", BatchMessage(1, 45'000)));
    }
  });

  // Hundreds of streams over many connections, each holding a hello.
  std::atomic<int> flood_welcomed{0};
  std::thread flood([&] {
    constexpr int kConnections = 10;
    constexpr int kStreamsEach = 30;
    struct Open {
      std::unique_ptr<grpc::ClientContext> context;
      std::unique_ptr<Stream> stream;
    };
    std::vector<std::unique_ptr<v1::StationLink::Stub>> stubs;
    std::vector<Open> open;
    for (int c = 0; c < kConnections; ++c) {
      stubs.push_back(v1::StationLink::NewStub(OwnConnection(port_, 10 + c)));
      for (int s = 0; s < kStreamsEach; ++s) {
        Open o;
        o.context = std::make_unique<grpc::ClientContext>();
        o.context->set_deadline(Deadline(60));
        o.stream = stubs.back()->Stream(o.context.get());
        o.stream->Write(HelloMessage("flood-" + std::to_string(c) + "-" +
                                     std::to_string(s)));
        open.push_back(std::move(o));
      }
    }
    for (Open& o : open) {
      v1::HubMessage welcome;
      if (o.stream->Read(&welcome) && welcome.has_welcome()) ++flood_welcomed;
    }
    while (!honest_done) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (Open& o : open) o.context->TryCancel();
    for (Open& o : open) o.stream->Finish();
  });

  // A station that sends batches and pings but never reads: the hub's
  // answers to it pile up only to a bound, and its reads go on.
  std::atomic<uint64_t> mute_sent{0};
  std::thread mute([&] {
    auto stub = v1::StationLink::NewStub(OwnConnection(port_, 3));
    grpc::ClientContext context;
    context.set_deadline(Deadline(60));
    auto stream = stub->Stream(&context);
    bool ok = stream->Write(HelloMessage("hostile-mute"));
    for (uint64_t seq = 1; ok && !honest_done; ++seq) {
      v1::StationMessage ping;
      ping.mutable_clock_ping()->set_ping_id(seq);
      ok = stream->Write(BatchMessage(seq, 40)) && stream->Write(ping);
      if (ok) mute_sent = seq;
    }
    context.TryCancel();
    stream->Finish();
  });

  for (std::thread& t : honest) t.join();
  honest_done = true;
  malformed.join();
  flood.join();
  mute.join();

  for (int i = 0; i < kHonestStations; ++i) {
    SCOPED_TRACE("honest-" + std::to_string(i));
    EXPECT_TRUE(honest_status[i].ok()) << honest_status[i].error_message();
    EXPECT_EQ(honest_acked[i], kHonestBatches);
  }
  ASSERT_EQ(garbage.size(), 20u);
  for (const grpc::Status& s : garbage) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(),
                ::testing::HasSubstr("5 bytes is not a StationMessage"));
  }
  for (const grpc::Status& s : oversized) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << s.error_message();
  }
  EXPECT_EQ(flood_welcomed.load(), 300);
  EXPECT_GT(mute_sent.load(), 0u);

  // Still serving: a fresh station is welcomed and the staff API answers.
  {
    auto stub = v1::StationLink::NewStub(OwnConnection(port_, 99));
    const grpc::Status status =
        SendAfterHello(*stub, "after-attack", BatchMessage(1, 40));
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
  v1::ListStationsResponse stations;
  {
    auto auth = v1::Auth::NewStub(OwnConnection(port_, 97));
    grpc::ClientContext login_ctx;
    login_ctx.set_deadline(Deadline(10));
    v1::LoginRequest login;
    login.set_username(testing::kTestStaffUser);
    login.set_password(testing::kTestStaffPassword);
    v1::LoginResponse session;
    ASSERT_TRUE(auth->Login(&login_ctx, login, &session).ok());
    auto clinic = v1::Clinic::NewStub(CreateStaffChannel(
        "127.0.0.1:" + std::to_string(port_),
        grpc::InsecureChannelCredentials(), session.token()));
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline(10));
    ASSERT_TRUE(clinic->ListStations(&ctx, {}, &stations).ok());
  }
  EXPECT_EQ(stations.stations_size(), kHonestStations + 300 + 3);
  {
    // Past the limit a new station is refused; a known one still connects.
    auto stub = v1::StationLink::NewStub(OwnConnection(port_, 98));
    const grpc::Status refused =
        SendAfterHello(*stub, "one-too-many", BatchMessage(1, 40));
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_THAT(refused.error_message(),
                ::testing::HasSubstr("already keeps 306 stations"));
    const grpc::Status known =
        SendAfterHello(*stub, "after-attack", BatchMessage(2, 40));
    EXPECT_TRUE(known.ok()) << known.error_message();
  }

  hub_.reset();  // every acknowledged batch must be in the database
  auto store = store::OpenSqliteStore(dir_.path() + "/stephub.db");
  ASSERT_TRUE(store.ok()) << store.status();
  for (int i = 0; i < kHonestStations; ++i) {
    EXPECT_EQ(*(*store)->CountBatches("honest-" + std::to_string(i)),
              static_cast<int64_t>(kHonestBatches));
  }
  EXPECT_EQ(*(*store)->CountBatches("hostile-big"), 0);
  EXPECT_EQ(*(*store)->CountBatches("after-attack"), 2);
  EXPECT_EQ(*(*store)->CountBatches("one-too-many"), 0);
}

}  // namespace
}  // namespace stephub
