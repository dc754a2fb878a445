// Server-side TLS configuration: the options tallyd's --tls_* flags fill,
// and the Boost.Asio SSL context built from them once at start.
//
// The context allows TLS 1.2 and 1.3 only (1.3 is preferred by OpenSSL's
// negotiation), with OpenSSL's default ciphers. With client_ca_file the
// server asks for a client certificate and verifies it against that CA;
// with require_client_cert a client without one is refused (mutual TLS).
//
// Errors: every load failure (missing or unreadable file, bad PEM, a key
// that does not match the certificate, a key readable by other users)
// comes back as a Status naming the file and the fix; tallyd then refuses
// to start. A group-readable key is accepted with a warning (Debian's
// ssl-cert group convention).

#ifndef TALLY_SERVER_TLS_CONTEXT_H_
#define TALLY_SERVER_TLS_CONTEXT_H_

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "protocol/result.h"

namespace tally {

struct TlsServerOptions {
  std::string cert_file;       // PEM, the server's certificate then its chain
  std::string key_file;        // PEM private key; empty cert_file: no TLS
  std::string client_ca_file;  // PEM CAs for client certificates (mTLS)
  bool require_client_cert = false;
  // (The handshake timeout is ConnectionOptions::tls_handshake_timeout.)

  bool enabled() const { return !cert_file.empty(); }
};

// Builds the server's SSL context. REQUIRES: options.enabled().
Result<std::unique_ptr<boost::asio::ssl::context>> MakeServerTlsContext(
    const TlsServerOptions& options);

// The OpenSSL error queue's most recent entry as text, and clears the
// queue ("" when empty).
std::string TakeOpenSslError();

}  // namespace tally

#endif  // TALLY_SERVER_TLS_CONTEXT_H_
