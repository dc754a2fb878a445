#include "server/tls_context.h"

#include <glog/logging.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace tally {

namespace ssl = boost::asio::ssl;

namespace {

Status TlsError(std::string_view what, const std::string& file,
                const boost::system::error_code& ec) {
  std::string detail = TakeOpenSslError();
  if (detail.empty()) detail = ec.message();
  return Status::InvalidArgument(std::string(what) + " '" + file +
                                 "': " + detail);
}

// The private key must be readable by the service user only: refuse a key
// other users can read or anyone but the owner can write.
Status CheckKeyPermissions(const std::string& key_file) {
  struct stat st {};
  if (::stat(key_file.c_str(), &st) != 0) {
    return Status::InvalidArgument("cannot read --tls_key_file '" + key_file +
                                   "': " + std::strerror(errno));
  }
  if ((st.st_mode & (S_IROTH | S_IWOTH | S_IWGRP)) != 0) {
    return Status::InvalidArgument(
        "--tls_key_file '" + key_file +
        "' is readable or writable by other users; run: chmod 600 '" +
        key_file + "' (and chown it to the user tallyd runs as)");
  }
  if ((st.st_mode & S_IRGRP) != 0) {
    LOG(WARNING) << "--tls_key_file '" << key_file
                 << "' is readable by its group; chmod 600 unless the group "
                    "is meant to read it";
  }
  return Status::Ok();
}

}  // namespace

std::string TakeOpenSslError() {
  std::string text;
  unsigned long code;  // NOLINT(runtime/int): OpenSSL's type
  while ((code = ERR_get_error()) != 0) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    text = buffer;  // the last one is the most specific
  }
  return text;
}

Result<std::unique_ptr<ssl::context>> MakeServerTlsContext(
    const TlsServerOptions& options) {
  if (options.key_file.empty()) {
    return Status::InvalidArgument(
        "--tls_cert_file needs --tls_key_file (the certificate's private "
        "key, PEM)");
  }
  if (options.require_client_cert && options.client_ca_file.empty()) {
    return Status::InvalidArgument(
        "--tls_require_client_cert needs --tls_client_ca_file (the CA that "
        "signs client certificates)");
  }
  Status permissions = CheckKeyPermissions(options.key_file);
  if (!permissions.ok()) return permissions;

  ERR_clear_error();
  auto context = std::make_unique<ssl::context>(ssl::context::tls_server);
  boost::system::error_code ec;
  context->set_options(ssl::context::default_workarounds |
                           ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                           ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                           ssl::context::single_dh_use,
                       ec);
  // Belt and braces: the floor also holds if the options above change.
  if (ec || SSL_CTX_set_min_proto_version(context->native_handle(),
                                          TLS1_2_VERSION) != 1) {
    return Status::Internal("cannot restrict TLS to 1.2+: " +
                            TakeOpenSslError());
  }
  context->use_certificate_chain_file(options.cert_file, ec);
  if (ec) {
    return TlsError("cannot load --tls_cert_file", options.cert_file, ec);
  }
  context->use_private_key_file(options.key_file, ssl::context::pem, ec);
  if (ec) return TlsError("cannot load --tls_key_file", options.key_file, ec);
  if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
    return Status::InvalidArgument(
        "--tls_key_file '" + options.key_file +
        "' does not match the certificate in --tls_cert_file '" +
        options.cert_file + "': " + TakeOpenSslError());
  }
  if (!options.client_ca_file.empty()) {
    context->load_verify_file(options.client_ca_file, ec);
    if (ec) {
      return TlsError("cannot load --tls_client_ca_file",
                      options.client_ca_file, ec);
    }
    // Tell clients which CAs are accepted, so they pick the right cert.
    STACK_OF(X509_NAME)* names =
        SSL_load_client_CA_file(options.client_ca_file.c_str());
    if (names != nullptr) {
      SSL_CTX_set_client_CA_list(context->native_handle(), names);
    }
    ssl::verify_mode mode = ssl::verify_peer;
    if (options.require_client_cert) mode |= ssl::verify_fail_if_no_peer_cert;
    context->set_verify_mode(mode, ec);
    if (ec) {
      return Status::Internal("cannot set the TLS verify mode: " +
                              ec.message());
    }
  }
  ERR_clear_error();
  return context;
}

}  // namespace tally
