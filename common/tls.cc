// gRPC credentials from the clinic's certificates; see tls.h.
#include "common/tls.h"

#include <grpc/grpc_security_constants.h>

#include "absl/strings/str_cat.h"

namespace stephub::tls {

absl::StatusOr<Pems> LoadFiles(const Files& files,
                               const std::string& make_hint) {
  Pems pems;
  const auto load = [&](const std::string& path, const char* what,
                        std::string* out) -> absl::Status {
    auto text = pki::ReadFile(path);
    if (!text.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, " ", path, " is missing or unreadable (",
                       text.status().message(), "); ", make_hint));
    }
    *out = *std::move(text);
    return absl::OkStatus();
  };
  if (auto s = load(files.ca_file, "the clinic CA certificate", &pems.ca_cert);
      !s.ok()) {
    return s;
  }
  if (auto ca = pki::ParseCert(pems.ca_cert); !ca.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(files.ca_file, ": ", ca.status().message()));
  }
  if (files.cert_file.empty()) return pems;
  if (auto s = load(files.cert_file, "the certificate", &pems.cert); !s.ok()) {
    return s;
  }
  if (auto s = load(files.key_file, "the private key", &pems.key); !s.ok()) {
    return s;
  }
  if (auto s = pki::CheckKeyMatches(pems.key, pems.cert); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        files.key_file, " and ", files.cert_file, ": ", s.message()));
  }
  return pems;
}

std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const Pems& pems,
                                                           bool insecure_dev) {
  if (insecure_dev) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = pems.ca_cert;
  options.pem_key_cert_pairs.push_back({pems.key, pems.cert});
  return grpc::SslServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(
    const Pems& pems, bool insecure_dev) {
  if (insecure_dev) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = pems.ca_cert;
  options.pem_private_key = pems.key;
  options.pem_cert_chain = pems.cert;
  return grpc::SslCredentials(options);
}

std::optional<pki::CertInfo> PeerCertificate(const grpc::AuthContext& auth) {
  const auto pem = auth.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pem.empty()) return std::nullopt;
  auto info =
      pki::ParseCert(std::string(pem.front().data(), pem.front().size()));
  if (!info.ok()) return std::nullopt;
  return *std::move(info);
}

}  // namespace stephub::tls
