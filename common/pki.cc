// Certificates on libcrypto; see pki.h.
#include "common/pki.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace stephub::pki {
namespace {

constexpr char kStationUriPrefix[] = "stephub:station:";

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Big = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;

// The library's own words for the last failure, for the message.
std::string OpenSslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

absl::Status Failed(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", OpenSslError()));
}

Key NewKey() { return Key(EVP_EC_gen("P-256")); }

absl::StatusOr<Key> ReadKey(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Key key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a PEM private key: ", OpenSslError()));
  }
  return key;
}

absl::StatusOr<Cert> ReadCert(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a PEM certificate: ", OpenSslError()));
  }
  return cert;
}

std::string KeyPem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr,
                           nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, n);
}

std::string CertPem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, n);
}

absl::Time FromAsn1(const ASN1_TIME* t) {
  struct tm tm = {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromTimeT(timegm(&tm));
}

bool IsIpAddress(const std::string& name) {
  unsigned char buf[16];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 ||
         inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

absl::Status AddExtension(X509* cert, X509V3_CTX* ctx, int nid,
                          const std::string& value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str());
  if (ext == nullptr) {
    return Failed(absl::StrCat("certificate extension \"", value, "\""));
  }
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return ok == 1 ? absl::OkStatus() : Failed("adding an extension");
}

struct Profile {
  std::string common_name;
  std::string organization;
  bool is_ca = false;
  std::string key_usage;
  std::string extended_key_usage;  // empty: none
  std::string subject_alt_name;    // empty: none
};

// A certificate for a new key by `profile`, signed by `issuer` (null:
// self-signed).
absl::StatusOr<KeyAndCert> Issue(const Profile& profile,
                                 const Validity& validity,
                                 const KeyAndCert* issuer) {
  if (validity.not_after <= validity.not_before) {
    return absl::InvalidArgumentError("a certificate must end after it begins");
  }
  Key key = NewKey();
  if (!key) return Failed("generating an EC P-256 key");
  Key issuer_key;
  Cert issuer_cert;
  if (issuer != nullptr) {
    auto k = ReadKey(issuer->key_pem);
    if (!k.ok()) return k.status();
    auto c = ReadCert(issuer->cert_pem);
    if (!c.ok()) return c.status();
    if (X509_check_private_key(c->get(), k->get()) != 1) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          "the CA's key does not belong to the CA's certificate");
    }
    issuer_key = std::move(*k);
    issuer_cert = std::move(*c);
  }
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  // 128 random bits, positive: unique without a serial-number file.
  unsigned char serial_bytes[16];
  if (RAND_bytes(serial_bytes, sizeof serial_bytes) != 1) {
    return Failed("random serial number");
  }
  serial_bytes[0] &= 0x7f;
  Big serial(BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr));
  BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()));
  ASN1_TIME_set(X509_getm_notBefore(cert.get()),
                absl::ToTimeT(validity.not_before));
  ASN1_TIME_set(X509_getm_notAfter(cert.get()),
                absl::ToTimeT(validity.not_after));
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  const auto add_name = [&](const char* field, const std::string& value) {
    return X509_NAME_add_entry_by_txt(
        name, field, MBSTRING_UTF8,
        reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0);
  };
  if (!profile.organization.empty()) add_name("O", profile.organization);
  if (add_name("CN", profile.common_name) != 1) {
    return Failed(absl::StrCat("common name \"", profile.common_name, "\""));
  }
  X509* signer = issuer_cert ? issuer_cert.get() : cert.get();
  EVP_PKEY* signing_key = issuer_key ? issuer_key.get() : key.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));

  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, signer, cert.get(), nullptr, nullptr, 0);
  std::vector<std::pair<int, std::string>> extensions = {
      {NID_basic_constraints,
       profile.is_ca ? "critical,CA:TRUE,pathlen:0" : "critical,CA:FALSE"},
      {NID_key_usage, "critical," + profile.key_usage},
      {NID_subject_key_identifier, "hash"},
  };
  if (issuer != nullptr) {
    extensions.push_back({NID_authority_key_identifier, "keyid:always"});
  }
  if (!profile.extended_key_usage.empty()) {
    extensions.push_back({NID_ext_key_usage, profile.extended_key_usage});
  }
  if (!profile.subject_alt_name.empty()) {
    extensions.push_back({NID_subject_alt_name, profile.subject_alt_name});
  }
  for (const auto& [nid, value] : extensions) {
    if (auto s = AddExtension(cert.get(), &ctx, nid, value); !s.ok()) return s;
  }
  if (X509_sign(cert.get(), signing_key, EVP_sha256()) == 0) {
    return Failed("signing the certificate");
  }
  return KeyAndCert{KeyPem(key.get()), CertPem(cert.get())};
}

}  // namespace

Validity CaValidity(absl::Time now) {
  return {now - absl::Hours(1), now + kCaLifetime};
}
Validity HubValidity(absl::Time now) {
  return {now - absl::Hours(1), now + kLeafLifetime};
}
Validity StationValidity(absl::Time now) { return {now, now + kLeafLifetime}; }

absl::StatusOr<KeyAndCert> MakeCa(const std::string& clinic_name,
                                  const Validity& validity) {
  if (clinic_name.empty() || clinic_name.size() > 48) {
    return absl::InvalidArgumentError(
        "the clinic's name must have 1 to 48 characters");
  }
  Profile p;
  p.common_name = absl::StrCat(clinic_name, " StepHub CA");
  p.organization = clinic_name;
  p.is_ca = true;
  p.key_usage = "keyCertSign,cRLSign";
  return Issue(p, validity, nullptr);
}

absl::StatusOr<KeyAndCert> MakeHubCert(const KeyAndCert& ca,
                                       const std::vector<std::string>& names,
                                       const Validity& validity) {
  if (names.empty()) {
    return absl::InvalidArgumentError(
        "the hub's certificate needs at least one DNS name or IP address");
  }
  std::vector<std::string> sans;
  for (const std::string& n : names) {
    const bool dns_name =
        !n.empty() && n.size() <= 253 &&
        n.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyz"
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == std::string::npos;
    if (!dns_name && !IsIpAddress(n)) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", n, "\" is neither a DNS name nor an IP address"));
    }
    sans.push_back(absl::StrCat(IsIpAddress(n) ? "IP:" : "DNS:", n));
  }
  Profile p;
  p.common_name = names.front();
  p.organization = "StepHub hub";
  p.key_usage = "digitalSignature,keyAgreement";
  p.extended_key_usage = "serverAuth";
  p.subject_alt_name = absl::StrJoin(sans, ",");
  return Issue(p, validity, &ca);
}

absl::StatusOr<KeyAndCert> MakeStationCert(const KeyAndCert& ca,
                                           const std::string& station_id,
                                           const Validity& validity) {
  if (auto s = CheckStationId(station_id); !s.ok()) return s;
  Profile p;
  p.common_name = station_id;
  p.organization = "StepHub station";
  p.key_usage = "digitalSignature,keyAgreement";
  p.extended_key_usage = "clientAuth";
  p.subject_alt_name = absl::StrCat("URI:", StationUri(station_id));
  return Issue(p, validity, &ca);
}

absl::StatusOr<CertInfo> ParseCert(const std::string& cert_pem) {
  auto cert = ReadCert(cert_pem);
  if (!cert.ok()) return cert.status();
  X509* x = cert->get();
  CertInfo info;
  const auto cn_of = [](X509_NAME* name) {
    const int at = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (at < 0) return std::string();
    ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, at));
    return std::string(
        reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
        ASN1_STRING_length(data));
  };
  info.common_name = cn_of(X509_get_subject_name(x));
  info.issuer_common_name = cn_of(X509_get_issuer_name(x));
  info.not_before = FromAsn1(X509_get0_notBefore(x));
  info.not_after = FromAsn1(X509_get0_notAfter(x));
  info.is_ca = X509_check_ca(x) != 0;
  Big serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr));
  char* hex = BN_bn2hex(serial.get());
  info.serial_hex = hex;
  OPENSSL_free(hex);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  X509_digest(x, EVP_sha256(), digest, &digest_len);
  for (unsigned int i = 0; i < digest_len; ++i) {
    absl::StrAppend(&info.sha256_hex, absl::Hex(digest[i], absl::kZeroPad2));
  }
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
    if (g->type == GEN_DNS || g->type == GEN_URI) {
      const ASN1_IA5STRING* s = g->d.ia5;
      std::string text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                       ASN1_STRING_length(s));
      (g->type == GEN_DNS ? info.dns_names : info.uris).push_back(text);
    } else if (g->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = g->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = {};
      const int family = ASN1_STRING_length(ip) == 4 ? AF_INET : AF_INET6;
      if (inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof text)) {
        info.ip_addresses.push_back(text);
      }
    }
  }
  GENERAL_NAMES_free(names);
  return info;
}

std::string StationUri(const std::string& station_id) {
  return absl::StrCat(kStationUriPrefix, station_id);
}

std::optional<std::string> StationIdOf(const CertInfo& cert) {
  for (const std::string& uri : cert.uris) {
    if (absl::StartsWith(uri, kStationUriPrefix)) {
      return uri.substr(sizeof kStationUriPrefix - 1);
    }
  }
  return std::nullopt;
}

absl::Status CheckStationId(const std::string& station_id) {
  const bool ok =
      !station_id.empty() && station_id.size() <= 64 &&
      station_id.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_.") ==
          std::string::npos;
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("\"", station_id,
                   "\" is not a station id: use 1 to 64 of a-z 0-9 - _ ."));
}

absl::Status VerifyCert(const std::string& cert_pem,
                        const std::string& ca_cert_pem, absl::Time at) {
  auto cert = ReadCert(cert_pem);
  if (!cert.ok()) return cert.status();
  auto ca = ReadCert(ca_cert_pem);
  if (!ca.ok()) return ca.status();
  std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>> store(
      X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca->get());
  std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>
      ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert->get(), nullptr);
  X509_STORE_CTX_set_time(ctx.get(), 0, absl::ToTimeT(at));
  if (X509_verify_cert(ctx.get()) == 1) return absl::OkStatus();
  const int error = X509_STORE_CTX_get_error(ctx.get());
  ERR_clear_error();
  return absl::FailedPreconditionError(
      absl::StrCat("certificate not accepted by the CA: ",
                   X509_verify_cert_error_string(error)));
}

absl::Status CheckKeyMatches(const std::string& key_pem,
                             const std::string& cert_pem) {
  auto key = ReadKey(key_pem);
  if (!key.ok()) return key.status();
  auto cert = ReadCert(cert_pem);
  if (!cert.ok()) return cert.status();
  if (X509_check_private_key(cert->get(), key->get()) == 1) {
    return absl::OkStatus();
  }
  ERR_clear_error();
  return absl::FailedPreconditionError(
      "the private key does not belong to the certificate");
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::Status WriteFile(const std::string& path, const std::string& contents,
                       int mode, bool overwrite) {
  struct stat st;
  if (!overwrite && ::stat(path.c_str(), &st) == 0) {
    return absl::AlreadyExistsError(
        absl::StrCat(path, " exists; not replacing it"));
  }
  const std::string temp = path + ".partial";
  ::unlink(temp.c_str());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL, mode);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write ", temp, ": ", std::strerror(errno)));
  }
  ::fchmod(fd, mode);  // whatever the umask says
  size_t written = 0;
  while (written < contents.size()) {
    const ssize_t n =
        ::write(fd, contents.data() + written, contents.size() - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  const bool ok = written == contents.size() && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string error = std::strerror(errno);
    ::unlink(temp.c_str());
    return absl::InternalError(
        absl::StrCat("cannot write ", path, ": ", error));
  }
  return absl::OkStatus();
}

}  // namespace stephub::pki
