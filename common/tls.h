// gRPC transport security for every StepHub process: the hub's server
// credentials, the channel credentials of stations and staff tools, and the
// certificate a peer presented. Plaintext only where insecure_dev says so.
#ifndef STEPHUB_COMMON_TLS_H_
#define STEPHUB_COMMON_TLS_H_

#include <grpcpp/security/auth_context.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/pki.h"

namespace stephub::tls {

// A TLS identity and the CA it trusts, as PEM text.
struct Pems {
  std::string ca_cert;
  std::string cert;  // empty: none (staff tools, for now)
  std::string key;
};

// Files of a TLS identity.
struct Files {
  std::string ca_file;
  std::string cert_file;  // empty: no certificate of our own
  std::string key_file;
};
// Reads them and checks that the key is the certificate's; an error names
// the file and ends with `make_hint`, how to create a missing one (e.g.
// "stephub certs init --dir DIR").
absl::StatusOr<Pems> LoadFiles(const Files& files,
                               const std::string& make_hint);

// The hub's: TLS with `pems`, asking every client for a certificate and
// verifying one that is given against the clinic CA (stations must give
// one; StationLink checks it, staff tools give none); plaintext with
// `insecure_dev`.
std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const Pems& pems,
                                                           bool insecure_dev);

// A client's: trusts `pems.ca_cert` only and presents `pems.cert` if given;
// plaintext with `insecure_dev`.
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const Pems& pems,
                                                             bool insecure_dev);

// The certificate the peer presented on this call, verified by the
// handshake against the clinic CA; nullopt when it gave none (or the call
// is not over TLS).
std::optional<pki::CertInfo> PeerCertificate(const grpc::AuthContext& auth);

}  // namespace stephub::tls

#endif  // STEPHUB_COMMON_TLS_H_
