// The clinic's certificates as files; see certs.h. The CA directory holds
// ca.crt and ca.key (keep the key there, or offline), hub.crt and hub.key,
// and stations/ID.crt and stations/ID.key for each bay.
#include "tools/certs.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/pki.h"
#include "tools/cli_args.h"

namespace stephub::cli {
namespace {

namespace fs = std::filesystem;

constexpr char kCertsUsage[] = R"(usage:
  stephub certs init [--dir DIR] [--clinic NAME] [--force]
                        the clinic CA (10 years): DIR/ca.crt, DIR/ca.key
  stephub certs hub [--dir DIR] [--name HOST,IP,...] [--force]
                        the hub's certificate (2 years) for localhost,
                        127.0.0.1 and each name: DIR/hub.crt, DIR/hub.key
  stephub certs station ID [--dir DIR] [--force]
                        bay ID's client certificate (2 years):
                        DIR/stations/ID.crt, DIR/stations/ID.key
DIR defaults to stephub-data/tls, where the hub looks with its default
--data_dir. Existing files are never replaced without --force.
)";

class Certs {
 public:
  Certs(std::ostream& out, std::ostream& err) : out_(out), err_(err) {}

  int Run(const std::vector<std::string>& words) {
    auto args = ParseArgs(words, {"dir", "clinic", "name"}, {"force", "help"});
    if (!args.ok()) return Usage(std::string(args.status().message()));
    if (args->options.count("help")) {
      out_ << kCertsUsage;
      return 0;
    }
    if (args->positional.empty()) return Usage("certs: init, hub or station?");
    dir_ = args->options.count("dir") ? args->options["dir"] : kDefaultCertsDir;
    force_ = args->options.count("force") > 0;
    const std::string& verb = args->positional[0];
    if (verb == "init") {
      if (args->positional.size() != 1) return Usage("certs init takes no ID");
      return Init(args->options.count("clinic") ? args->options["clinic"]
                                                : "Clinic");
    }
    if (verb == "hub") {
      if (args->positional.size() != 1) {
        return Usage("certs hub: give names with --name HOST,IP,...");
      }
      std::vector<std::string> names = {"localhost", "127.0.0.1"};
      for (absl::string_view n :
           absl::StrSplit(args->options["name"], ',', absl::SkipWhitespace())) {
        if (std::find(names.begin(), names.end(), n) == names.end()) {
          names.emplace_back(n);
        }
      }
      return Hub(names);
    }
    if (verb == "station") {
      if (args->positional.size() != 2) return Usage("certs station ID");
      return Station(args->positional[1]);
    }
    return Usage(absl::StrCat("certs: unknown verb \"", verb, "\""));
  }

 private:
  int Usage(const std::string& message) {
    err_ << "stephub: " << message << "\n" << kCertsUsage;
    return 2;
  }
  int Fail(absl::string_view message) {
    err_ << "stephub: " << message << "\n";
    return 1;
  }
  std::string Path(const std::string& name) const {
    return (fs::path(dir_) / name).string();
  }

  // The directory, created private if missing.
  absl::Status MakeDir(const std::string& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot create directory ", dir, ": ", ec.message()));
    }
    fs::permissions(dir, fs::perms::owner_all, ec);
    return absl::OkStatus();
  }

  // Refuses before writing anything, so that a refusal leaves no half set.
  absl::Status CheckFree(const std::vector<std::string>& paths) {
    if (force_) return absl::OkStatus();
    for (const std::string& p : paths) {
      std::error_code ec;
      if (fs::exists(p, ec)) {
        return absl::AlreadyExistsError(absl::StrCat(
            p, " exists; not replacing it (--force replaces it",
            p.find("ca.") != std::string::npos
                ? ", and every certificate the old CA signed stops working)"
                : ")"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status Write(const std::string& key_path, const std::string& cert_path,
                     const pki::KeyAndCert& made) {
    if (auto s = pki::WriteFile(key_path, made.key_pem, 0600, force_); !s.ok())
      return s;
    return pki::WriteFile(cert_path, made.cert_pem, 0644, force_);
  }

  absl::StatusOr<pki::KeyAndCert> LoadCa() {
    pki::KeyAndCert ca;
    for (auto [name, out] : {std::pair{"ca.crt", &ca.cert_pem},
                             std::pair{"ca.key", &ca.key_pem}}) {
      auto text = pki::ReadFile(Path(name));
      if (!text.ok()) {
        return absl::FailedPreconditionError(
            absl::StrCat(text.status().message(),
                         "; create the clinic CA first: stephub "
                         "certs init --dir ",
                         dir_));
      }
      *out = *std::move(text);
    }
    return ca;
  }

  int Init(const std::string& clinic) {
    const std::string key = Path("ca.key"), cert = Path("ca.crt");
    if (auto s = MakeDir(dir_); !s.ok()) return Fail(s.message());
    if (auto s = CheckFree({key, cert}); !s.ok()) return Fail(s.message());
    auto ca = pki::MakeCa(clinic, pki::CaValidity(absl::Now()));
    if (!ca.ok()) return Fail(ca.status().message());
    if (auto s = Write(key, cert, *ca); !s.ok()) return Fail(s.message());
    out_ << "clinic CA: " << cert << " (private key " << key
         << ": keep it safe, ideally offline once stations have theirs)\n";
    return 0;
  }

  int Hub(const std::vector<std::string>& names) {
    const std::string key = Path("hub.key"), cert = Path("hub.crt");
    auto ca = LoadCa();
    if (!ca.ok()) return Fail(ca.status().message());
    if (auto s = CheckFree({key, cert}); !s.ok()) return Fail(s.message());
    auto made = pki::MakeHubCert(*ca, names, pki::HubValidity(absl::Now()));
    if (!made.ok()) return Fail(made.status().message());
    if (auto s = Write(key, cert, *made); !s.ok()) return Fail(s.message());
    out_ << "hub certificate: " << cert << " for " << absl::StrJoin(names, ", ")
         << " (key " << key << ")\n";
    return 0;
  }

  int Station(const std::string& station_id) {
    if (auto s = pki::CheckStationId(station_id); !s.ok()) {
      return Usage(std::string(s.message()));
    }
    const std::string dir = Path("stations");
    const std::string key = (fs::path(dir) / (station_id + ".key")).string();
    const std::string cert = (fs::path(dir) / (station_id + ".crt")).string();
    auto ca = LoadCa();
    if (!ca.ok()) return Fail(ca.status().message());
    if (auto s = MakeDir(dir); !s.ok()) return Fail(s.message());
    if (auto s = CheckFree({key, cert}); !s.ok()) return Fail(s.message());
    auto made = pki::MakeStationCert(*ca, station_id,
                                     pki::StationValidity(absl::Now()));
    if (!made.ok()) return Fail(made.status().message());
    if (auto s = Write(key, cert, *made); !s.ok()) return Fail(s.message());
    out_ << "station " << station_id << ": " << cert << " (key " << key
         << "); copy both and " << Path("ca.crt") << " to the bay's Pi\n";
    return 0;
  }

  std::ostream& out_;
  std::ostream& err_;
  std::string dir_;
  bool force_ = false;
};

}  // namespace

int RunCerts(const std::vector<std::string>& words, std::ostream& out,
             std::ostream& err) {
  return Certs(out, err).Run(words);
}

}  // namespace stephub::cli
