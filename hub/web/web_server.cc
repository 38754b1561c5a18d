// The web dashboard's HTTP server; see web_server.h.
//
// Asynchronous Beast sessions on two I/O threads, each connection on its
// own strand with an idle timeout. A live page's event stream reads
// WatchClinic on a thread of its own (a blocking gRPC read) and hands each
// event to its session; a browser that stops reading is disconnected once
// its backlog passes a bound (it reconnects and starts from a fresh
// snapshot), so a stalled page never holds more than that.
#include "hub/web/web_server.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "hub/auth/staff_accounts.h"
#include "hub/web/web_assets.h"
#include "stephub/v1/auth.grpc.pb.h"
#include "stephub/v1/clinic.grpc.pb.h"
#include "stephub/v1/dashboard.grpc.pb.h"

namespace stephub::web {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// A request line and headers larger than this, or a body (a set's start),
// are refused: nothing the dashboard sends comes near.
constexpr size_t kMaxRequestBytes = 64 * 1024;
// An idle keep-alive connection, or a request that dribbles in, is closed.
constexpr auto kIdleTimeout = std::chrono::seconds(60);
// A live page that does not read: disconnected past this many events.
constexpr size_t kMaxUnsentEvents = 512;
// After the last response of a connection, how long its client may go on
// sending (a body it was refused) before the connection is closed anyway.
constexpr auto kLinger = std::chrono::seconds(5);
// A comment on an idle event stream, so that a page that went away is
// noticed and its stream ended.
constexpr auto kHeartbeat = std::chrono::seconds(15);
// A unary call to the hub's services.
constexpr auto kCallDeadline = std::chrono::seconds(10);
// The session cookie: the bearer token from Auth.Login, which the browser
// sends back and scripts cannot read (HttpOnly).
constexpr absl::string_view kSessionCookie = "stephub_session";

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  // Zero counts and false flags are data on a dashboard.
  options.always_print_primitive_fields = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options)
           .ok()) {
    return "{}";
  }
  return json;
}

std::string JsonQuoted(absl::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppend(&out, "\\u00", absl::Hex(c, absl::kZeroPad2));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

http::status HttpStatusOf(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return http::status::ok;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return http::status::bad_request;
    case grpc::StatusCode::NOT_FOUND:
      return http::status::not_found;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ABORTED:
      return http::status::conflict;
    case grpc::StatusCode::PERMISSION_DENIED:
      return http::status::forbidden;
    case grpc::StatusCode::UNAUTHENTICATED:
      return http::status::unauthorized;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return http::status::too_many_requests;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return http::status::service_unavailable;
    default:
      return http::status::internal_server_error;
  }
}

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    default:
      return "ERROR";
  }
}

// What a handler answers: a status, a type and a body.
struct Reply {
  http::status status = http::status::ok;
  std::string content_type = "application/json";
  std::string body;
  bool cache = false;      // static assets may be cached by the browser
  std::string set_cookie = {};  // sign-in and sign-out
};

// Who a request comes from: the session cookie's token, and the CSRF token
// a page's script sends with every POST.
struct RequestAuth {
  std::string token;
  std::string csrf;
};

RequestAuth AuthOf(const http::request<http::string_body>& request) {
  RequestAuth auth;
  const auto cookies = request[http::field::cookie];
  for (absl::string_view cookie :
       absl::StrSplit(absl::string_view(cookies.data(), cookies.size()), ';')) {
    cookie = absl::StripAsciiWhitespace(cookie);
    const size_t eq = cookie.find('=');
    if (eq != absl::string_view::npos &&
        cookie.substr(0, eq) == kSessionCookie) {
      auth.token = std::string(cookie.substr(eq + 1));
    }
  }
  // The token goes into gRPC metadata, where bytes outside visible ASCII
  // are an API misuse that aborts the process (found by the HTTP fuzz
  // target): such a cookie is no session.
  if (!std::all_of(auth.token.begin(), auth.token.end(),
                   [](char c) { return absl::ascii_isgraph(c); })) {
    auth.token.clear();
  }
  auth.csrf = std::string(request["X-CSRF-Token"]);
  return auth;
}

// The CSRF token of a session: derived from the session's secret, so a
// page of this origin can be told it (GET /api/session) while another
// site, which cannot read our responses or the HttpOnly cookie, cannot
// know it.
std::string CsrfFor(const std::string& token) {
  return token.empty() ? "" : auth::Sha256Hex(absl::StrCat("csrf:", token));
}

void Authenticate(grpc::ClientContext* context, const std::string& token) {
  if (!token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", token));
  }
}

Reply Error(http::status status, const char* code, absl::string_view message) {
  return {status, "application/json",
          absl::StrCat("{\"code\":\"", code,
                       "\",\"message\":", JsonQuoted(message), "}")};
}

Reply FromCall(const grpc::Status& status,
               const google::protobuf::Message& response) {
  if (!status.ok()) {
    return Error(HttpStatusOf(status.error_code()),
                 CodeName(status.error_code()), status.error_message());
  }
  return {http::status::ok, "application/json", ToJson(response)};
}

void SetDeadline(grpc::ClientContext* context) {
  context->set_deadline(std::chrono::system_clock::now() + kCallDeadline);
}

// A unary call on behalf of the page's signed-in person.
void PrepareCall(grpc::ClientContext* context, const std::string& token) {
  SetDeadline(context);
  Authenticate(context, token);
}

// What the page keeps of its session: who, and the token for its POSTs.
std::string SessionJson(const v1::StaffUser& user, const std::string& token) {
  return absl::StrCat("{\"user\":", ToJson(user),
                      ",\"csrfToken\":", JsonQuoted(CsrfFor(token)), "}");
}

std::string SessionCookie(const std::string& token, int64_t max_age_s,
                          bool secure) {
  // Strict: the browser sends it only on requests from our own pages, so
  // another site cannot act with it.
  return absl::StrCat(kSessionCookie, "=", token,
                      "; Path=/; Max-Age=", max_age_s,
                      "; HttpOnly; SameSite=Strict", secure ? "; Secure" : "");
}

// A browser's connection, whatever its transport.
class Connection {
 public:
  virtual ~Connection() = default;
  // From any thread.
  virtual void CloseSoon() = 0;
};

// What a request the parser refused is answered: why, with 413 for one
// past the size limits.
Reply BadRequest(beast::error_code ec) {
  return Error(ec == http::error::body_limit || ec == http::error::header_limit
                   ? http::status::payload_too_large
                   : http::status::bad_request,
               "INVALID_ARGUMENT",
               absl::StrCat("bad HTTP request: ", ec.message()));
}

// `head`: the headers a GET would have, without its body.
http::response<http::string_body> ResponseOf(Reply reply, bool keep_alive,
                                             bool head) {
  http::response<http::string_body> response(reply.status, 11);
  response.set(http::field::server, "stephub-hub");
  response.set(http::field::content_type, reply.content_type);
  response.set(http::field::cache_control,
               reply.cache ? "max-age=300" : "no-store");
  // Pages are not to be framed by another site (clickjacking) nor
  // guessed into another type.
  response.set("X-Frame-Options", "DENY");
  response.set("X-Content-Type-Options", "nosniff");
  if (!reply.set_cookie.empty()) {
    response.set(http::field::set_cookie, reply.set_cookie);
  }
  response.keep_alive(keep_alive);
  response.body() = std::move(reply.body);
  response.prepare_payload();
  if (head) response.body().clear();
  return response;
}

bool IsEventStream(const http::request<http::string_body>& request) {
  const absl::string_view target(request.target().data(),
                                 request.target().size());
  return request.method() == http::verb::get &&
         (target == "/api/events" || absl::StartsWith(target, "/api/events?"));
}

}  // namespace

struct WebServer::State : std::enable_shared_from_this<WebServer::State> {
  WebOptions options;
  std::unique_ptr<v1::Clinic::Stub> clinic;
  std::unique_ptr<v1::Dashboard::Stub> dashboard;
  std::unique_ptr<v1::Auth::Stub> auth;
  asio::io_context io{2};
  tcp::acceptor acceptor{io};
  // HTTPS; empty: plain HTTP (the hub's insecure_dev).
  std::optional<asio::ssl::context> tls;
  std::vector<std::thread> threads;
  std::atomic<int> connections{0};
  std::atomic<bool> stopping{false};
  int port = 0;

  // Live pages' WatchClinic calls, to cancel on shutdown.
  std::mutex watches_mu;
  std::list<grpc::ClientContext*> watches;
  // Every connection, to close on shutdown.
  std::mutex sessions_mu;
  std::list<std::weak_ptr<Connection>> sessions;

  Reply Route(http::verb method, absl::string_view target,
              const std::string& body, const RequestAuth& auth);
  // POST /api/login, /api/logout; GET /api/session.
  Reply Login(const std::string& body);
  Reply Logout(const RequestAuth& auth);
  Reply CurrentSession(const RequestAuth& auth);
  void Accept();
};

namespace {

// Reads WatchClinic on its own thread for one live page and hands each
// event, as an SSE message, to `deliver` (which returns false once the
// page is gone).
class EventPump {
 public:
  EventPump(std::shared_ptr<WebServer::State> state, const std::string& token,
            std::function<bool(std::string)> deliver)
      : state_(std::move(state)), deliver_(std::move(deliver)) {
    Authenticate(&context_, token);
  }
  ~EventPump() {
    context_.TryCancel();
    if (thread_.joinable()) thread_.join();
  }
  EventPump(const EventPump&) = delete;
  EventPump& operator=(const EventPump&) = delete;

  void Start() {
    {
      std::lock_guard<std::mutex> lock(state_->watches_mu);
      state_->watches.push_back(&context_);
      registered_ = std::prev(state_->watches.end());
    }
    thread_ = std::thread([this] { Run(); });
  }
  void Stop() { context_.TryCancel(); }

 private:
  void Run() {
    auto reader = state_->dashboard->WatchClinic(&context_, {});
    v1::ClinicEvent event;
    while (reader->Read(&event)) {
      // One SSE message per event; its JSON is one line.
      if (!deliver_(
              absl::StrCat("event: clinic\ndata: ", ToJson(event), "\n\n"))) {
        context_.TryCancel();
        break;
      }
    }
    const grpc::Status status = reader->Finish();
    if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
      deliver_(absl::StrCat(
          "event: error\ndata: ", JsonQuoted(status.error_message()), "\n\n"));
    }
    deliver_("");  // the end
    std::lock_guard<std::mutex> lock(state_->watches_mu);
    state_->watches.erase(registered_);
  }

  std::shared_ptr<WebServer::State> state_;
  std::function<bool(std::string)> deliver_;
  grpc::ClientContext context_;
  std::list<grpc::ClientContext*>::iterator registered_;
  std::thread thread_;
};

// One connection over `Stream`: beast::tcp_stream (HTTP) or an
// ssl_stream over it (HTTPS, after its handshake).
template <typename Stream>
class Session : public Connection,
                public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;
  using std::enable_shared_from_this<Session<Stream>>::shared_from_this;
  using std::enable_shared_from_this<Session<Stream>>::weak_from_this;

  // `busy`: a connection beyond the cap, not counted, that is answered
  // 503 once its request is read (over TLS the refusal needs the handshake).
  template <typename... TlsContext>
  Session(tcp::socket socket, std::shared_ptr<WebServer::State> state,
          bool busy, TlsContext&... tls)
      : stream_(std::move(socket), tls...),
        state_(std::move(state)),
        busy_(busy) {}
  ~Session() {
    pump_.reset();  // joins its thread, which no longer reaches this session
    if (!busy_) state_->connections.fetch_sub(1);
  }

  void Start() {
    {
      std::lock_guard<std::mutex> lock(state_->sessions_mu);
      state_->sessions.remove_if(
          [](const std::weak_ptr<Connection>& s) { return s.expired(); });
      state_->sessions.push_back(weak_from_this());
    }
    asio::dispatch(
        stream_.get_executor(),
        beast::bind_front_handler(&Session::Handshake, shared_from_this()));
  }

  void CloseSoon() override {
    asio::post(stream_.get_executor(),
               [self = shared_from_this()] { self->Close(); });
  }

 private:
  void Handshake() {
    if constexpr (kTls) {
      tcp().expires_after(kIdleTimeout);
      stream_.async_handshake(
          asio::ssl::stream_base::server,
          [self = shared_from_this()](beast::error_code ec) {
            // A browser that does not trust the clinic CA gives up here.
            if (ec) {
              self->Close();
              return;
            }
            self->Read();
          });
    } else {
      Read();
    }
  }

  beast::tcp_stream& tcp() { return beast::get_lowest_layer(stream_); }

  void Read() {
    parser_.emplace();
    parser_->header_limit(kMaxRequestBytes);
    parser_->body_limit(kMaxRequestBytes);
    // A refused connection gets no long wait for its request.
    if (busy_) {
      tcp().expires_after(kLinger);
    } else {
      tcp().expires_after(kIdleTimeout);
    }
    http::async_read(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, size_t) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        state_->stopping) {
      Close();
      return;
    }
    if (ec) {
      // A malformed or oversized request gets a reason, then the door.
      Send(BadRequest(ec), false);
      return;
    }
    if (busy_) {
      Reply busy;
      busy.status = http::status::service_unavailable;
      busy.content_type = "text/plain";
      busy.body = "too many dashboard connections; retry\n";
      Send(std::move(busy), false);
      return;
    }
    const auto& request = parser_->get();
    const std::string target(request.target());
    if (IsEventStream(request)) {
      // Refused with a status a script can see, not an event stream that
      // ends at once and that EventSource would retry for ever.
      const RequestAuth auth = AuthOf(request);
      Reply who = state_->CurrentSession(auth);
      if (who.status != http::status::ok) {
        Send(std::move(who), request.keep_alive());
        return;
      }
      StartEvents(request.version(), auth.token);
      return;
    }
    Reply reply = state_->Route(request.method(), target, request.body(),
                                AuthOf(request));
    Send(std::move(reply), request.keep_alive(),
         request.method() == http::verb::head);
  }

  // `head`: the headers a GET would have, without its body.
  void Send(Reply reply, bool keep_alive, bool head = false) {
    auto response = std::make_shared<http::response<http::string_body>>(
        ResponseOf(std::move(reply), keep_alive, head));
    tcp().expires_after(kIdleTimeout);
    http::async_write(stream_, *response,
                      [self = shared_from_this(), response, keep_alive](
                          beast::error_code ec, size_t) {
                        if (ec) {
                          self->Close();
                          return;
                        }
                        if (!keep_alive) {
                          self->Linger();
                          return;
                        }
                        self->Read();
                      });
  }

  // Server-Sent Events: headers, then one message per clinic event.
  void StartEvents(unsigned version, std::string token) {
    auto header = std::make_shared<http::response<http::empty_body>>(
        http::status::ok, version);
    header->set(http::field::server, "stephub-hub");
    header->set(http::field::content_type, "text/event-stream");
    header->set(http::field::cache_control, "no-store");
    header->keep_alive(true);
    header->chunked(false);
    auto serializer =
        std::make_shared<http::response_serializer<http::empty_body>>(*header);
    tcp().expires_never();
    http::async_write_header(
        stream_, *serializer,
        [self = shared_from_this(), header, serializer,
         token = std::move(token)](beast::error_code ec, size_t) {
          if (ec) {
            self->Close();
            return;
          }
          std::weak_ptr<Session> weak = self;
          auto executor = self->stream_.get_executor();
          self->pump_ = std::make_shared<EventPump>(
              self->state_, token, [weak, executor](std::string message) {
                auto session = weak.lock();
                if (!session) return false;
                const bool open = !session->gone_;
                // Moved, not copied: this thread must never hold the last
                // reference, or the session would end here and join it.
                asio::post(executor, [s = std::move(session),
                                      m = std::move(message)] { s->Queue(m); });
                return open;
              });
          self->pump_->Start();
          self->Heartbeat();
          self->NoticeClose();
        });
  }

  void Queue(std::string message) {
    if (gone_) return;
    if (message.empty()) {  // the watch ended: end the response
      ending_ = true;
      if (!writing_) Close();
      return;
    }
    if (unsent_.size() >= kMaxUnsentEvents) {
      // The page stopped reading. Its EventSource reconnects and begins
      // from a fresh snapshot; holding more would only grow.
      Close();
      return;
    }
    unsent_.push_back(std::move(message));
    WriteNext();
  }

  void WriteNext() {
    if (writing_ || unsent_.empty() || gone_) return;
    writing_ = true;
    asio::async_write(
        stream_, asio::buffer(unsent_.front()),
        [self = shared_from_this()](beast::error_code ec, size_t) {
          self->writing_ = false;
          self->unsent_.pop_front();
          if (ec) {
            self->Close();
            return;
          }
          if (self->unsent_.empty() && self->ending_) {
            self->Close();
            return;
          }
          self->WriteNext();
        });
  }

  // Reads and drops input until the client closes (or the read fails),
  // then closes. A page sends nothing on its event stream: a read that ends
  // is the page gone, noticed at once rather than at the next write.
  void NoticeClose() {
    stream_.async_read_some(
        asio::buffer(ignored_input_),
        [self = shared_from_this()](beast::error_code ec, size_t) {
          if (ec) {
            self->Close();
            return;
          }
          self->NoticeClose();
        });
  }

  void Heartbeat() {
    heartbeat_ = std::make_unique<asio::steady_timer>(stream_.get_executor());
    heartbeat_->expires_after(kHeartbeat);
    heartbeat_->async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->gone_) return;
      if (self->unsent_.empty()) self->Queue(": still here\n\n");
      self->Heartbeat();
    });
  }

  // The last response is sent: stop sending, and read and drop whatever
  // the client still sends (the rest of a body it was refused) until it
  // closes or kLinger passes, so that its writes do not fail before it
  // reads the answer.
  void Linger() {
    beast::error_code ignored;
    tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
    tcp().expires_after(kLinger);
    NoticeClose();
  }

  void Close() {
    if (gone_) return;
    gone_ = true;
    if (heartbeat_) heartbeat_->cancel();
    if (pump_) pump_->Stop();
    beast::error_code ignored;
    tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    tcp().close();
    // The pump's thread ends with its cancelled watch; the destructor
    // joins it.
  }

  Stream stream_;
  std::shared_ptr<WebServer::State> state_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  // Live pages only.
  std::shared_ptr<EventPump> pump_;
  std::deque<std::string> unsent_;
  bool writing_ = false;
  bool ending_ = false;
  std::atomic<bool> gone_{false};
  std::unique_ptr<asio::steady_timer> heartbeat_;
  std::array<char, 256> ignored_input_;
  const bool busy_;
};

}  // namespace

void WebServer::State::Accept() {
  acceptor.async_accept(
      asio::make_strand(io),
      [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
        if (ec || self->stopping) return;
        if (self->connections.fetch_add(1) >= self->options.max_connections) {
          self->connections.fetch_sub(1);
          if (self->tls) {
            std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
                std::move(socket), self, /*busy=*/true, *self->tls)
                ->Start();
            self->Accept();
            return;
          }
          // Too many at once: say so, briefly, and close.
          static const std::string kBusy =
              "HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
              "text/plain\r\nContent-Length: 38\r\nConnection: close\r\n\r\n"
              "too many dashboard connections; retry\n";
          beast::error_code ignored;
          asio::write(socket, asio::buffer(kBusy), ignored);
          socket.close(ignored);
        } else if (self->tls) {
          std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
              std::move(socket), self, /*busy=*/false, *self->tls)
              ->Start();
        } else {
          std::make_shared<Session<beast::tcp_stream>>(std::move(socket), self,
                                                       /*busy=*/false)
              ->Start();
        }
        self->Accept();
      });
}

Reply WebServer::State::Login(const std::string& body) {
  v1::LoginRequest request;
  if (auto s = google::protobuf::util::JsonStringToMessage(body, &request);
      !s.ok()) {
    return Error(http::status::bad_request, "INVALID_ARGUMENT",
                 "the body is not {\"username\": ..., \"password\": ...}");
  }
  request.set_client("web dashboard");
  v1::LoginResponse response;
  grpc::ClientContext context;
  SetDeadline(&context);
  const grpc::Status status = auth->Login(&context, request, &response);
  if (!status.ok()) return FromCall(status, response);
  const int64_t max_age = std::max<int64_t>(
      0, response.expires_at().seconds() - absl::ToUnixSeconds(absl::Now()));
  Reply reply{http::status::ok, "application/json",
              SessionJson(response.user(), response.token())};
  reply.set_cookie =
      SessionCookie(response.token(), max_age, options.secure_cookies);
  return reply;
}

Reply WebServer::State::Logout(const RequestAuth& request_auth) {
  grpc::ClientContext context;
  PrepareCall(&context, request_auth.token);
  v1::LogoutResponse response;
  Reply reply = FromCall(auth->Logout(&context, {}, &response), response);
  // Forgotten by the browser whatever the hub said.
  reply.set_cookie = SessionCookie("", 0, options.secure_cookies);
  return reply;
}

Reply WebServer::State::CurrentSession(const RequestAuth& request_auth) {
  grpc::ClientContext context;
  PrepareCall(&context, request_auth.token);
  v1::StaffUser user;
  const grpc::Status status = auth->WhoAmI(&context, {}, &user);
  if (!status.ok()) return FromCall(status, user);
  return {http::status::ok, "application/json",
          SessionJson(user, request_auth.token)};
}

Reply WebServer::State::Route(http::verb method, absl::string_view target,
                              const std::string& body,
                              const RequestAuth& request_auth) {
  if (const size_t q = target.find('?'); q != absl::string_view::npos) {
    target = target.substr(0, q);
  }
  const std::vector<absl::string_view> parts =
      absl::StrSplit(target, '/', absl::SkipEmpty());
  auto id_at = [&](size_t i, int64_t* id) {
    return parts.size() > i && absl::SimpleAtoi(parts[i], id) && *id > 0;
  };
  if (!parts.empty() && parts[0] == "api") {
    if (method == http::verb::post && target == "/api/login") {
      return Login(body);
    }
    if (method == http::verb::post) {
      // Every other POST changes something: it must come from our own page,
      // which alone can know the session's CSRF token.
      if (request_auth.token.empty() ||
          request_auth.csrf != CsrfFor(request_auth.token)) {
        return Error(http::status::forbidden, "PERMISSION_DENIED",
                     request_auth.token.empty()
                         ? "sign in first"
                         : "missing or wrong X-CSRF-Token header (reload "
                           "the page)");
      }
      if (target == "/api/logout") return Logout(request_auth);
    }
    if (method == http::verb::post) {
      if (target == "/api/sets/start" || target == "/api/sets/end") {
        const bool start = target == "/api/sets/start";
        v1::StartSetRequest start_request;
        v1::EndSetRequest end_request;
        google::protobuf::Message& request =
            start ? static_cast<google::protobuf::Message&>(start_request)
                  : end_request;
        if (auto s =
                google::protobuf::util::JsonStringToMessage(body, &request);
            !s.ok()) {
          return Error(http::status::bad_request, "INVALID_ARGUMENT",
                       absl::StrCat("the body is not a ",
                                    request.GetDescriptor()->name(),
                                    " in JSON: ", s.message().ToString()));
        }
        v1::ExerciseSet set;
        grpc::ClientContext context;
        PrepareCall(&context, request_auth.token);
        const grpc::Status status =
            start ? clinic->StartSet(&context, start_request, &set)
                  : clinic->EndSet(&context, end_request, &set);
        return FromCall(status, set);
      }
      return Error(http::status::not_found, "NOT_FOUND",
                   absl::StrCat("no POST ", target));
    }
    if (method != http::verb::get) {
      return Error(http::status::method_not_allowed, "INVALID_ARGUMENT",
                   "the API takes GET, and POST to /api/sets/start|end, "
                   "/api/login and /api/logout");
    }
    if (target == "/api/session") return CurrentSession(request_auth);
    grpc::ClientContext context;
    PrepareCall(&context, request_auth.token);
    if (target == "/api/stations") {
      v1::ListStationsResponse response;
      return FromCall(clinic->ListStations(&context, {}, &response), response);
    }
    if (target == "/api/patients") {
      v1::ListPatientsResponse response;
      return FromCall(clinic->ListPatients(&context, {}, &response), response);
    }
    if (target == "/api/scoring-versions") {
      v1::ListScoringVersionsResponse response;
      return FromCall(clinic->ListScoringVersions(&context, {}, &response),
                      response);
    }
    if (target == "/api/therapists") {
      v1::ListTherapistsResponse response;
      return FromCall(clinic->ListTherapists(&context, {}, &response),
                      response);
    }
    int64_t id = 0;
    if (parts.size() == 3 && parts[1] == "patients" && id_at(2, &id)) {
      v1::GetPatientRequest request;
      request.set_patient_id(id);
      v1::Patient response;
      return FromCall(clinic->GetPatient(&context, request, &response),
                      response);
    }
    if (parts.size() == 4 && parts[1] == "patients" && id_at(2, &id) &&
        parts[3] == "sessions") {
      v1::ListSessionsRequest request;
      request.set_patient_id(id);
      v1::ListSessionsResponse response;
      return FromCall(clinic->ListSessions(&context, request, &response),
                      response);
    }
    if (parts.size() == 4 && parts[1] == "patients" && id_at(2, &id) &&
        parts[3] == "progress") {
      v1::GetPatientProgressRequest request;
      request.set_patient_id(id);
      v1::PatientProgress response;
      return FromCall(
          dashboard->GetPatientProgress(&context, request, &response),
          response);
    }
    if (target == "/api/clinic") {
      // The snapshot WatchClinic begins with.
      auto reader = dashboard->WatchClinic(&context, {});
      v1::ClinicEvent event;
      if (!reader->Read(&event) || !event.has_snapshot()) {
        context.TryCancel();
        return FromCall(reader->Finish(), event);
      }
      context.TryCancel();
      reader->Finish();
      return {http::status::ok, "application/json", ToJson(event.snapshot())};
    }
    return Error(http::status::not_found, "NOT_FOUND",
                 absl::StrCat("no API at ", target));
  }
  if (method != http::verb::get && method != http::verb::head) {
    return Error(http::status::method_not_allowed, "INVALID_ARGUMENT",
                 "pages are read with GET");
  }
  // Pages: the clinic, a bay, a patient; the rest are their assets.
  std::string asset(target);
  if (target == "/" || target == "/index.html") {
    asset = "/clinic.html";
  } else if (parts.size() == 2 && parts[0] == "bay") {
    asset = "/bay.html";
  } else if (parts.size() == 2 && parts[0] == "patient") {
    asset = "/patient.html";
  } else if (target == "/login") {
    asset = "/login.html";
  }
  if (const Asset* a = FindAsset(asset)) {
    return {http::status::ok, std::string(a->content_type),
            std::string(a->data),
            asset != "/clinic.html" && asset != "/bay.html" &&
                asset != "/patient.html" && asset != "/login.html"};
  }
  return {http::status::not_found, "text/plain",
          absl::StrCat("no page at ", target, "\n")};
}

namespace {

absl::StatusOr<std::shared_ptr<WebServer::State>> NewState(
    const WebOptions& options, std::shared_ptr<grpc::Channel> hub) {
  auto state = std::make_shared<WebServer::State>();
  state->options = options;
  if (!options.tls_cert_pem.empty()) {
    state->tls.emplace(asio::ssl::context::tls_server);
    state->tls->set_options(
        asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
        asio::ssl::context::no_tlsv1_1);
    beast::error_code ec;
    state->tls->use_certificate_chain(asio::buffer(options.tls_cert_pem), ec);
    if (!ec) {
      state->tls->use_private_key(asio::buffer(options.tls_key_pem),
                                  asio::ssl::context::pem, ec);
    }
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the dashboard's certificate or key is unusable: ", ec.message()));
    }
  }
  state->clinic = v1::Clinic::NewStub(hub);
  state->dashboard = v1::Dashboard::NewStub(hub);
  state->auth = v1::Auth::NewStub(hub);
  return state;
}

}  // namespace

WebServer::WebServer(std::shared_ptr<State> state) : state_(std::move(state)) {}

absl::StatusOr<std::unique_ptr<WebServer>> WebServer::Start(
    const WebOptions& options, std::shared_ptr<grpc::Channel> hub) {
  auto made = NewState(options, hub);
  if (!made.ok()) return made.status();
  std::shared_ptr<State> state = *std::move(made);
  const std::string& address = options.listen_address;
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "web address \"", address, "\" is not HOST:PORT (e.g. 0.0.0.0:8080)"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  beast::error_code ec;
  const auto ip = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat(
        "web address \"", address, "\": \"", host, "\" is not an IP address"));
  }
  const tcp::endpoint endpoint(ip, static_cast<uint16_t>(port));
  state->acceptor.open(endpoint.protocol(), ec);
  if (!ec)
    state->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) state->acceptor.bind(endpoint, ec);
  if (!ec)
    state->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot serve the dashboard on ",
                                               address, ": ", ec.message()));
  }
  state->port = state->acceptor.local_endpoint().port();
  state->Accept();
  for (int i = 0; i < 2; ++i) {
    state->threads.emplace_back([s = state.get()] { s->io.run(); });
  }
  return std::unique_ptr<WebServer>(new WebServer(std::move(state)));
}

int WebServer::port() const { return state_->port; }

void WebServer::Shutdown() {
  if (state_->stopping.exchange(true)) return;
  asio::post(state_->io, [s = state_.get()] {
    beast::error_code ignored;
    s->acceptor.close(ignored);
  });
  {
    std::lock_guard<std::mutex> lock(state_->watches_mu);
    for (grpc::ClientContext* c : state_->watches) c->TryCancel();
  }
  {
    std::lock_guard<std::mutex> lock(state_->sessions_mu);
    for (const auto& weak : state_->sessions) {
      if (auto session = weak.lock()) session->CloseSoon();
    }
  }
  // With the listener and every connection closed, the loop runs out of
  // work and its threads return.
  for (std::thread& t : state_->threads) t.join();
  state_->threads.clear();
}

WebServer::~WebServer() { Shutdown(); }

namespace {
// The handler sees requests as they come out of TLS: it has no use for the
// certificate, and without one making its state cannot fail.
WebOptions WithoutTls(WebOptions options) {
  options.tls_cert_pem.clear();
  options.tls_key_pem.clear();
  return options;
}
}  // namespace

WebRequestHandler::WebRequestHandler(const WebOptions& options,
                                     std::shared_ptr<grpc::Channel> hub)
    : state_(*NewState(WithoutTls(options), std::move(hub))) {}

WebRequestHandler::~WebRequestHandler() = default;

std::string WebRequestHandler::Answer(absl::string_view raw_request) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(kMaxRequestBytes);
  parser.body_limit(kMaxRequestBytes);
  parser.eager(true);
  beast::error_code ec;
  size_t used = 0;
  // The bytes as a socket would deliver them, all at once; what is left
  // after a complete request would be the next one, which a connection
  // reads next, so it is not looked at here.
  while (!ec && !parser.is_done() && used < raw_request.size()) {
    const size_t n = parser.put(
        asio::buffer(raw_request.data() + used, raw_request.size() - used), ec);
    used += n;
    // As Beast's own read loop does, the parser is given more only after
    // it asked for more; every byte is here already, so this is the end
    // of the input. (Calling it again on the same bytes trips its
    // assertions: the HTTP fuzz target's second find.)
    if (ec == http::error::need_more) {
      ec = {};
      break;
    }
  }
  // The peer closed: what came is all there is (Beast wants some first).
  if (!ec && !parser.is_done() && parser.got_some()) parser.put_eof(ec);
  if (!ec && !parser.is_done()) ec = http::error::partial_message;
  Reply reply;
  bool keep_alive = false;
  bool head = false;
  if (ec) {
    reply = BadRequest(ec);
  } else {
    const auto& request = parser.get();
    keep_alive = request.keep_alive();
    head = request.method() == http::verb::head;
    if (IsEventStream(request)) {
      // The stream itself needs a connection; its gate does not.
      reply = state_->CurrentSession(AuthOf(request));
    } else {
      reply = state_->Route(
          request.method(),
          absl::string_view(request.target().data(), request.target().size()),
          request.body(), AuthOf(request));
    }
  }
  std::ostringstream out;
  out << ResponseOf(std::move(reply), keep_alive, head);
  return out.str();
}

}  // namespace stephub::web
