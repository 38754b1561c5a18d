// `stephub certs`: the clinic's certificates, made offline in a CA
// directory (no hub needed): init (the clinic CA), hub (the hub's server
// certificate), station ID (a bay's client certificate).
#ifndef STEPHUB_TOOLS_CERTS_H_
#define STEPHUB_TOOLS_CERTS_H_

#include <ostream>
#include <string>
#include <vector>

namespace stephub::cli {

// The CA directory when --dir is not given: where the hub looks by default.
inline constexpr char kDefaultCertsDir[] = "stephub-data/tls";

// Runs `stephub certs WORDS...`; returns 0, 1 (could not) or 2 (usage).
int RunCerts(const std::vector<std::string>& words, std::ostream& out,
             std::ostream& err);

}  // namespace stephub::cli

#endif  // STEPHUB_TOOLS_CERTS_H_
