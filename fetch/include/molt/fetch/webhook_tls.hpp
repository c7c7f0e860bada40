#pragma once
// Checks, before anything starts, that the certificates of a failback setup fit together, so a
// mistake is a precise error at `molt fetch` time instead of endless TLS failures in the
// changefeed job later (molt-fetch-failback.md §1.4, §7).
//
// Inputs: what the changefeed will use (from --changefeeds-path's sink_query_parameters:
// ca_cert, client_cert, client_key, already base64-decoded to PEM) and what the replicator
// will use (--tlsCertificate / --tlsPrivateKey files, or --tlsSelfSigned; --tlsClientCA).
//
// Which checks apply (each problem names the file or sink parameter it comes from; no message
// contains PEM text or key material):
//   - every PEM given parses (a file that cannot be read is named with the reason);
//   - client_cert and client_key come together (CockroachDB refuses one without the other);
//   - each key matches its certificate: client_key / client_cert, --tlsPrivateKey /
//     --tlsCertificate (when both are given);
//   - no certificate in any given PEM (leaves, intermediates, CAs) is expired or not yet valid
//     at `now`;
//   - --tlsCertificate, unless insecure_tls_skip_verify (then CockroachDB checks nothing):
//       * is valid for webhook_host: a DNS name or IP address in subjectAltName; the Common Name
//         is ignored, as Go (CockroachDB) ignores it;
//       * chains to ca_cert, when ca_cert is given (intermediates may follow the leaf in the file;
//         any certificate of ca_cert may be the anchor, as in Go). Without ca_cert CockroachDB
//         uses its nodes' system roots, which cannot be checked from here;
//   - --tlsSelfSigned: the replicator generates its certificate at start, which no CA has signed,
//     so CockroachDB refuses it unless insecure_tls_skip_verify=true: reported when that is
//     missing (with a note that ca_cert cannot help when it is given);
//   - client_cert (only when given) chains to client_ca_file, when one is given, the way the
//     replicator verifies it (OpenSSL, a self-signed root in the file as the anchor, TLS client
//     purpose). Without client_ca_file the replicator does not verify client certificates.
// Pairing rules between flags (cert without key, --tlsSelfSigned with --tlsCertificate) are the
// replicator's preflight, not repeated here.

#include <chrono>
#include <string>
#include <vector>

namespace molt::fetch {

struct webhook_tls_material {
    std::string webhook_host;  ///< the override file's "host": what CockroachDB connects to

    // The changefeed's side (sink_query_parameters), PEM text; empty when absent.
    bool insecure_tls_skip_verify = false;
    std::string ca_cert_pem;      ///< "ca_cert": the CA CockroachDB trusts for the replicator
    std::string client_cert_pem;  ///< "client_cert"
    std::string client_key_pem;   ///< "client_key" (secret)

    // The replicator's side (from --replicator-flags); file paths, empty when absent.
    bool self_signed = false;      ///< --tlsSelfSigned
    std::string server_cert_file;  ///< --tlsCertificate
    std::string server_key_file;   ///< --tlsPrivateKey
    /// The CA the replicator will use to verify client certificates: --tlsClientCA, or (when
    /// molt configures client-certificate authentication itself) a file holding ca_cert.
    std::string client_ca_file;
    /// How messages name client_ca_file, e.g. "the ca_cert of --changefeeds-path" when molt
    /// wrote that file itself; empty: "--tlsClientCA <client_ca_file>".
    std::string client_ca_source;
};

/// Every problem found, each a complete sentence for the user; empty when all is well.
/// `now` is injectable for tests (expiry).
[[nodiscard]] std::vector<std::string> check_webhook_tls(
    const webhook_tls_material& material,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

}  // namespace molt::fetch
