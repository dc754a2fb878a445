// Exposure checks at start: the bind policy and the run-as-user check
// (docs/security.md, "Network exposure").
#include <boost/asio/ip/address.hpp>
#include <string>

#include "server/auth.h"

namespace tally {

bool IsLoopbackAddress(std::string_view address) {
  boost::system::error_code ec;
  const boost::asio::ip::address a =
      boost::asio::ip::make_address(std::string(address), ec);
  if (ec) return false;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped,
                                            a.to_v6())
        .is_loopback();
  }
  return a.is_loopback();
}

BindDecision CheckBindPolicy(std::string_view bind_list, bool have_tokens,
                             bool have_tls, bool insecure_allow_public_bind) {
  BindDecision d;
  // Every address of the list is checked; the verdict names the ones that
  // are not loopback (an empty entry is not an address: it counts as public
  // here and fails at Start()).
  std::string bind;
  bool public_bind = false;
  for (size_t start = 0;;) {
    const size_t comma = bind_list.find(',', start);
    std::string address(bind_list.substr(start, comma == std::string_view::npos
                                                    ? std::string_view::npos
                                                    : comma - start));
    std::erase(address, ' ');
    if (!IsLoopbackAddress(address)) {
      public_bind = true;
      bind += (bind.empty() ? "" : ",") + (address.empty() ? "''" : address);
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (!public_bind || (have_tokens && have_tls)) return d;
  std::string missing;
  if (!have_tokens) missing = "--token_file";
  if (!have_tls)
    missing += std::string(missing.empty() ? "" : " and ") +
               "--tls_cert_file/--tls_key_file";
  if (insecure_allow_public_bind) {
    d.warn = true;
    d.message = "--insecure_allow_public_bind: listening on " + bind +
                ", which is not loopback, without " +
                (have_tokens ? std::string("TLS")
                 : have_tls  ? std::string("authentication")
                             : std::string("authentication or TLS")) +
                " (missing " + missing +
                "): anyone who can reach this address can read and change "
                "every counter. Use only on a trusted network.";
    return d;
  }
  d.allowed = false;
  d.message = "refusing to listen on " + bind +
              ": it is not a loopback address, and a public bind needs both "
              "authentication and TLS (missing " +
              missing +
              "). Fix: set --token_file and --tls_cert_file/--tls_key_file, "
              "or bind 127.0.0.1; --insecure_allow_public_bind overrides "
              "(not recommended).";
  return d;
}

Status CheckRunAsUser(uid_t euid, bool allow_root) {
  if (euid != 0 || allow_root) return Status::Ok();
  return Status::InvalidArgument(
      "refusing to run as root (euid 0): run tallyd as an unprivileged user "
      "that owns --data_dir, or pass --allow_root");
}

}  // namespace tally
