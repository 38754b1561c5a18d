// The hub's web dashboard: pages for the clinic, each bay and each patient,
// a JSON API and a Server-Sent Events stream, served over HTTP by
// Boost.Beast, over HTTPS unless the hub runs insecure_dev. It is a view of the
// gRPC contract: every answer comes from the hub's own Clinic and Dashboard
// services, called through a channel, and is their message in protobuf's JSON
// mapping.
#ifndef STEPHUB_HUB_WEB_WEB_SERVER_H_
#define STEPHUB_HUB_WEB_WEB_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stephub::web {

struct WebOptions {
  // "HOST:PORT"; port 0 picks one. Loopback by default: opening it to the
  // clinic's network is a decision (deploy/stephub-hub.service makes it).
  std::string listen_address = "127.0.0.1:8080";
  // HTTPS with this certificate chain and key (PEM; the hub's own); empty:
  // plain HTTP.
  std::string tls_cert_pem;
  std::string tls_key_pem;
  // Connections served at once (each holds a thread; a live page holds
  // one for as long as it is open). Beyond it: 503.
  int max_connections = 64;
  // The session cookie is marked Secure (sent over HTTPS only).
  bool secure_cookies = true;
};

class WebServer {
 public:
  // `hub` reaches the hub's gRPC services (in the hub: its in-process
  // channel).
  static absl::StatusOr<std::unique_ptr<WebServer>> Start(
      const WebOptions& options, std::shared_ptr<grpc::Channel> hub);
  ~WebServer();  // shuts down if still running

  int port() const;
  // Closes the listener and every connection, live pages included.
  void Shutdown();

  struct State;  // shared with the connections (web_server.cc)

 private:
  explicit WebServer(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

// One raw HTTP request answered as a connection of the web server would
// answer it (same parser limits, same routing, same hub calls), with no
// socket: for the HTTP fuzz target. Live event streams need a connection;
// here a request for one is answered with its sign-in check only.
class WebRequestHandler {
 public:
  WebRequestHandler(const WebOptions& options,
                    std::shared_ptr<grpc::Channel> hub);
  ~WebRequestHandler();

  // The response's bytes (status line, headers, body).
  std::string Answer(absl::string_view raw_request);

 private:
  std::shared_ptr<WebServer::State> state_;
};

}  // namespace stephub::web

#endif  // STEPHUB_HUB_WEB_WEB_SERVER_H_
