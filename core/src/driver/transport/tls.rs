//! TLS with rustls (ring provider): reading PEM files and building the server and client
//! configurations.

use std::path::Path;
use std::sync::Arc;

use futures_rustls::pki_types::pem::{self, PemObject};
use futures_rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use futures_rustls::rustls::client::WebPkiServerVerifier;
use futures_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use futures_rustls::rustls::crypto::CryptoProvider;
use futures_rustls::rustls::server::WebPkiClientVerifier;
use futures_rustls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme,
};

use super::TransportError;
use crate::broker::ListenerTls;
use crate::client::options::ClientOptions;

/// The crypto provider of every configuration made here (ring: it builds with a C compiler
/// alone, where aws-lc-rs needs cmake).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file; at least one.
fn read_certs(who: &str, what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let file_error = |reason: String| TransportError::File { who: who.to_owned(), what, path: path.to_owned(), reason };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(pem_reason(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(pem_reason(&e)))?;
    if certs.is_empty() {
        return Err(file_error("it holds no PEM CERTIFICATE".to_owned()));
    }
    Ok(certs)
}

/// What went wrong reading PEM, for an error line.
fn pem_reason(e: &pem::Error) -> String {
    match e {
        pem::Error::Io(io) => io.to_string(),
        other => format!("not valid PEM: {other}"),
    }
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
fn read_key(who: &str, path: &Path) -> Result<PrivateKeyDer<'static>, TransportError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TransportError::File {
        who: who.to_owned(),
        what: "keyfile",
        path: path.to_owned(),
        reason: match e {
            pem::Error::NoItemsFound => "it holds no PEM private key".to_owned(),
            other => pem_reason(&other),
        },
    })
}

/// Trust anchors from a CA file, a directory of CA files and PEM text; `None` when none of the
/// three is given.
fn roots(
    who: &str,
    file: Option<&Path>,
    dir: Option<&Path>,
    data: Option<&str>,
) -> Result<Option<RootCertStore>, TransportError> {
    if file.is_none() && dir.is_none() && data.is_none() {
        return Ok(None);
    }
    let mut store = RootCertStore::empty();
    let mut add = |cert: CertificateDer<'static>, what: &'static str, path: &Path| {
        store.add(cert).map_err(|e| TransportError::File {
            who: who.to_owned(),
            what,
            path: path.to_owned(),
            reason: format!("not a CA certificate rustls accepts: {e}"),
        })
    };
    if let Some(path) = file {
        for cert in read_certs(who, "cafile", path)? {
            add(cert, "cafile", path)?;
        }
    }
    if let Some(dir) = dir {
        let entries = std::fs::read_dir(dir).map_err(|e| TransportError::File {
            who: who.to_owned(),
            what: "capath",
            path: dir.to_owned(),
            reason: e.to_string(),
        })?;
        let mut found = 0usize;
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            // A CA directory may hold other files (hash links, CRLs, notes): take what parses.
            match read_certs(who, "capath", &path) {
                Ok(certs) => {
                    for cert in certs {
                        add(cert, "capath", &path)?;
                        found += 1;
                    }
                }
                Err(e) => log::debug!("{e} (skipped)"),
            }
        }
        if found == 0 {
            return Err(TransportError::File {
                who: who.to_owned(),
                what: "capath",
                path: dir.to_owned(),
                reason: "no file in it holds a PEM CERTIFICATE".to_owned(),
            });
        }
    }
    if let Some(text) = data {
        let config_error = |reason: String| TransportError::Config { who: who.to_owned(), reason };
        let certs = CertificateDer::pem_slice_iter(text.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| config_error(format!("cadata: {}", pem_reason(&e))))?;
        if certs.is_empty() {
            return Err(config_error("cadata holds no PEM CERTIFICATE".to_owned()));
        }
        for cert in certs {
            store.add(cert).map_err(|e| config_error(format!("cadata: not a CA certificate rustls accepts: {e}")))?;
        }
    }
    Ok(Some(store))
}

/// The rustls configuration of a TLS listener; `who` names it in errors.
pub(super) fn server_config(who: &str, tls: &ListenerTls) -> Result<Arc<ServerConfig>, TransportError> {
    let config_error = |reason: String| TransportError::Config { who: who.to_owned(), reason };
    if tls.certfile.as_os_str().is_empty() || tls.keyfile.as_os_str().is_empty() {
        return Err(config_error("ssl: on needs certfile and keyfile (PEM)".to_owned()));
    }
    let certs = read_certs(who, "certfile", &tls.certfile)?;
    let key = read_key(who, &tls.keyfile)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(format!("TLS versions: {e}")))?;
    let roots = roots(who, tls.cafile.as_deref(), tls.capath.as_deref(), tls.cadata.as_deref())?;
    let builder = match roots {
        None if tls.require_certificate => {
            return Err(config_error(
                "require-certificate needs the CAs client certificates are checked against: cafile, capath or cadata"
                    .to_owned(),
            ));
        }
        None => builder.with_no_client_auth(),
        Some(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let verifier = if tls.require_certificate { verifier } else { verifier.allow_unauthenticated() };
            builder.with_client_cert_verifier(
                verifier.build().map_err(|e| config_error(format!("client certificate check: {e}")))?,
            )
        }
    };
    let config = builder.with_single_cert(certs, key).map_err(|e| {
        config_error(format!(
            "certfile {} and keyfile {} do not make a usable pair: {e}",
            tls.certfile.display(),
            tls.keyfile.display()
        ))
    })?;
    Ok(Arc::new(config))
}

/// The rustls configuration of a client: trust anchors from `ca_file`/`ca_path`/`ca_data`
/// (none given: the system's), the client certificate if `certfile` and `keyfile` are set,
/// and the host name checked unless `check_hostname` is off.
pub(super) fn client_config(options: &ClientOptions) -> Result<Arc<ClientConfig>, TransportError> {
    let who = "client";
    let config_error = |reason: String| TransportError::Config { who: who.to_owned(), reason };
    let roots = match roots(who, options.ca_file.as_deref(), options.ca_path.as_deref(), options.ca_data.as_deref())? {
        Some(roots) => roots,
        None => {
            let native = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            let (added, _) = store.add_parsable_certificates(native.certs);
            if added == 0 {
                let errors: Vec<String> = native.errors.iter().map(ToString::to_string).collect();
                return Err(config_error(format!(
                    "no trusted CA: none given (--ca-file, --ca-path, --ca-data) and none found in the system store{}",
                    if errors.is_empty() { String::new() } else { format!(" ({})", errors.join("; ")) }
                )));
            }
            store
        }
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(format!("TLS versions: {e}")))?;
    let builder = if options.check_hostname {
        builder.with_root_certificates(roots)
    } else {
        log::warn!(
            "check_hostname is off: the broker's certificate is checked against the CAs, but not for the name {:?}",
            options.url.host
        );
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| config_error(format!("server certificate check: {e}")))?;
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyName(inner)))
    };
    let config = match (&options.certfile, &options.keyfile) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = read_certs(who, "certfile", cert)?;
            let key_der = read_key(who, key)?;
            builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                config_error(format!(
                    "certfile {} and keyfile {} do not make a usable pair: {e}",
                    cert.display(),
                    key.display()
                ))
            })?
        }
        (Some(_), None) => return Err(config_error("certfile is set but keyfile is not; set both".to_owned())),
        (None, Some(_)) => return Err(config_error("keyfile is set but certfile is not; set both".to_owned())),
    };
    Ok(Arc::new(config))
}

/// The name the client's certificate check expects: the URL's host (an IP address or a DNS
/// name).
pub(super) fn server_name(host: &str) -> Result<ServerName<'static>, TransportError> {
    ServerName::try_from(host.to_owned()).map_err(|e| TransportError::Config {
        who: "client".to_owned(),
        reason: format!("{host:?} cannot be checked against a certificate: {e}"),
    })
}

/// Checks the broker's certificate chain as usual but accepts any name in it
/// (`check_hostname: false`).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain first and the name after it, so a name error means the
        // chain is good.
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
