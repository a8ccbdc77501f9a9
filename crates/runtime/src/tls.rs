//! TLS with rustls: mutual TLS between peers, server TLS on the client port.
//!
//! One cluster CA signs every node's certificate. A node's certificate names
//! it `node-<id>` (a DNS subject alternative name), and that name is its
//! identity between peers:
//!
//! - A dialer checks that the node it reached presents a certificate for
//!   `node-<id>` of the node it meant to reach.
//! - An acceptor refuses, during the TLS handshake and so before any quorum
//!   byte is read, a dialer without a certificate signed by the CA; then it
//!   refuses a handshake whose claimed node id is not the one the dialer's
//!   certificate names. A process holding only the cluster id can no longer
//!   join the peer mesh.
//!
//! The client port presents the same certificate (it also names `localhost`
//! and `127.0.0.1` when `quorum certs` writes it) and asks clients for none.

use quorum_core::NodeId;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The subject alternative name a node's certificate carries.
pub fn node_name(id: NodeId) -> String {
    format!("node-{}", id.0)
}

/// A node's TLS settings, built from PEM: its certificate chain and key, and
/// the cluster CA. Clones share them, and [`Tls::reload`] replaces them for
/// every clone: connections made after it use the new certificates, those
/// already open keep theirs.
#[derive(Clone)]
pub struct Tls {
    current: Arc<std::sync::RwLock<Configs>>,
    /// The files they were read from, for [`Tls::reload`].
    files: Option<Arc<(std::path::PathBuf, std::path::PathBuf, std::path::PathBuf)>>,
}

#[derive(Clone)]
struct Configs {
    /// Accepts peers: a client certificate signed by the CA is required.
    peer_acceptor: TlsAcceptor,
    /// Dials peers with this node's certificate.
    peer_connector: TlsConnector,
    /// Accepts clients on the client port (no client certificate asked).
    client_acceptor: TlsAcceptor,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tls { .. }")
    }
}

/// A server config on our provider and rustls's default protocol versions.
fn server_builder() -> Result<rustls::ConfigBuilder<rustls::ServerConfig, rustls::WantsVerifier>, String> {
    rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .map_err(|e| e.to_string())
}

/// rustls over *ring*: it builds with a C compiler alone, where aws-lc-rs
/// (rustls's default) wants more of the machine. rustls 0.23.48 deprecates
/// this provider because it has no post-quantum key exchange; moving to
/// aws-lc-rs is one line here when that matters more than the build.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Tls {
    /// Reads the three PEM files.
    pub fn from_files(cert: &Path, key: &Path, ca: &Path) -> Result<Tls, String> {
        let mut tls = Tls::from_pem(&read(cert)?, &read(key)?, &read(ca)?)
            .map_err(|e| format!("{e} (certificate {}, key {}, CA {})", cert.display(), key.display(), ca.display()))?;
        tls.files = Some(Arc::new((cert.to_path_buf(), key.to_path_buf(), ca.to_path_buf())));
        Ok(tls)
    }

    /// Reads the files again and, if they make valid settings, uses them
    /// from now on; if not, the settings in use stay and the error says why.
    pub fn reload(&self) -> Result<(), String> {
        let (cert, key, ca) = self.files.as_deref().ok_or("these TLS settings were not read from files")?;
        let fresh = Tls::from_files(cert, key, ca)?;
        let configs = fresh.configs();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = configs;
        Ok(())
    }

    fn configs(&self) -> Configs {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Accepts peers (mutual TLS).
    pub fn peer_acceptor(&self) -> TlsAcceptor {
        self.configs().peer_acceptor
    }

    /// Dials peers with this node's certificate.
    pub fn peer_connector(&self) -> TlsConnector {
        self.configs().peer_connector
    }

    /// Accepts clients.
    pub fn client_acceptor(&self) -> TlsAcceptor {
        self.configs().client_acceptor
    }

    /// Builds the settings from PEM bytes.
    pub fn from_pem(cert: &[u8], key: &[u8], ca: &[u8]) -> Result<Tls, String> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("bad certificate PEM: {e}"))?;
        if chain.is_empty() {
            return Err("the certificate file holds no certificate".into());
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("bad private key PEM: {e}"))?;
        let mut roots = rustls::RootCertStore::empty();
        for ca_cert in CertificateDer::pem_slice_iter(ca) {
            let ca_cert = ca_cert.map_err(|e| format!("bad CA PEM: {e}"))?;
            roots.add(ca_cert).map_err(|e| format!("bad CA certificate: {e}"))?;
        }
        if roots.is_empty() {
            return Err("the CA file holds no certificate".into());
        }
        let roots = Arc::new(roots);
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .map_err(|e| format!("cannot build the peer verifier: {e}"))?;
        let peer_server = server_builder()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| format!("certificate and key do not go together: {e}"))?;
        let peer_client = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain.clone(), key.clone_key())
            .map_err(|e| format!("certificate and key do not go together: {e}"))?;
        let client_server = server_builder()?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| format!("certificate and key do not go together: {e}"))?;
        let configs = Configs {
            peer_acceptor: TlsAcceptor::from(Arc::new(peer_server)),
            peer_connector: TlsConnector::from(Arc::new(peer_client)),
            client_acceptor: TlsAcceptor::from(Arc::new(client_server)),
        };
        Ok(Tls { current: Arc::new(std::sync::RwLock::new(configs)), files: None })
    }

    /// The name a dialer expects the certificate of `peer` to carry.
    pub fn server_name(peer: NodeId) -> ServerName<'static> {
        ServerName::try_from(node_name(peer)).expect("node-<number> is a valid DNS name")
    }
}

/// Checks that `cert` (already verified against the CA by the handshake)
/// names node `id`.
pub fn check_identity(cert: &CertificateDer<'_>, id: NodeId) -> Result<(), String> {
    let parsed = webpki::EndEntityCert::try_from(cert).map_err(|e| format!("unreadable peer certificate: {e:?}"))?;
    let name = Tls::server_name(id);
    parsed
        .verify_is_valid_for_subject_name(&name)
        .map_err(|_| format!("the dialer claims to be {id} but its certificate is not for {}", node_name(id)))
}

/// A development CA and one certificate per node, as PEM text: what
/// `quorum certs` writes and `quorum cluster --tls` uses. Not for production
/// (the CA key sits beside the certificates), but the same files an operator's
/// own CA would produce: any CA whose node certificates carry `node-<id>` works.
pub struct DevCerts {
    /// The CA certificate (`ca.pem`).
    pub ca: String,
    /// The CA's private key (`ca-key.pem`), to sign more nodes' certificates.
    pub ca_key: String,
    /// Per node id: its certificate and private key.
    pub nodes: std::collections::BTreeMap<u64, (String, String)>,
}

impl DevCerts {
    /// A new CA, and for each of `ids` a certificate for `node-<id>`,
    /// `localhost`, `127.0.0.1`, `::1` and every one of `hosts` (names or IP
    /// addresses the node is reached by), usable as server and as client.
    pub fn generate(ids: impl IntoIterator<Item = u64>, hosts: &[String]) -> Result<DevCerts, String> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
        };
        let failed = |e: rcgen::Error| format!("cannot make a certificate: {e}");
        let ca_key = KeyPair::generate().map_err(failed)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
        ca.distinguished_name.push(DnType::CommonName, "quorum development CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca_cert = ca.self_signed(&ca_key).map_err(failed)?;
        let mut nodes = std::collections::BTreeMap::new();
        for id in ids {
            let key = KeyPair::generate().map_err(failed)?;
            let mut names = vec![node_name(NodeId(id)), "localhost".into(), "127.0.0.1".into(), "::1".into()];
            names.extend(hosts.iter().cloned());
            let mut params = CertificateParams::new(names).map_err(failed)?;
            params.distinguished_name.push(DnType::CommonName, format!("quorum node {id}"));
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
            let cert = params.signed_by(&key, &ca_cert, &ca_key).map_err(failed)?;
            nodes.insert(id, (cert.pem(), key.serialize_pem()));
        }
        Ok(DevCerts { ca: ca_cert.pem(), ca_key: ca_key.serialize_pem(), nodes })
    }

    /// The TLS settings of node `id`.
    pub fn tls(&self, id: u64) -> Result<Tls, String> {
        let (cert, key) = self.nodes.get(&id).ok_or(format!("no certificate for node {id}"))?;
        Tls::from_pem(cert.as_bytes(), key.as_bytes(), self.ca.as_bytes())
    }

    /// Writes `ca.pem`, `ca-key.pem`, `node-<id>.pem` and `node-<id>-key.pem`
    /// into `dir` (keys readable by the owner only), refusing to overwrite.
    pub fn write(&self, dir: &Path) -> Result<Vec<std::path::PathBuf>, String> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut files = vec![("ca.pem".to_string(), &self.ca, 0o644), ("ca-key.pem".to_string(), &self.ca_key, 0o600)];
        for (id, (cert, key)) in &self.nodes {
            files.push((format!("{}.pem", node_name(NodeId(*id))), cert, 0o644));
            files.push((format!("{}-key.pem", node_name(NodeId(*id))), key, 0o600));
        }
        let mut written = Vec::new();
        for (name, text, mode) in files {
            let path = dir.join(name);
            let mut file =
                std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&path).map_err(|e| {
                    format!("cannot create {}: {e} (certificates are never overwritten)", path.display())
                })?;
            file.write_all(text.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            written.push(path);
        }
        Ok(written)
    }
}

/// The paths `DevCerts::write` gives node `id`'s files in `dir`: certificate, key, CA.
pub fn dev_paths(dir: &Path, id: u64) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let name = node_name(NodeId(id));
    (dir.join(format!("{name}.pem")), dir.join(format!("{name}-key.pem")), dir.join("ca.pem"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_certificate_names_its_node_and_no_other() {
        let certs = DevCerts::generate([1, 2], &[]).unwrap();
        let der = |id: u64| CertificateDer::from_pem_slice(certs.nodes[&id].0.as_bytes()).unwrap();
        assert!(check_identity(&der(1), NodeId(1)).is_ok());
        let err = check_identity(&der(1), NodeId(2)).unwrap_err();
        assert!(err.contains("claims to be n2 but its certificate is not for node-2"), "{err}");
        assert!(certs.tls(2).is_ok());
        assert!(certs.tls(3).is_err());
    }

    #[test]
    fn bad_pem_is_explained() {
        let certs = DevCerts::generate([1], &[]).unwrap();
        let (cert, key) = &certs.nodes[&1];
        let err = Tls::from_pem(b"", key.as_bytes(), certs.ca.as_bytes()).unwrap_err();
        assert!(err.contains("no certificate"), "{err}");
        let err = Tls::from_pem(cert.as_bytes(), b"junk", certs.ca.as_bytes()).unwrap_err();
        assert!(err.contains("private key"), "{err}");
        let other = DevCerts::generate([1], &[]).unwrap();
        let err = Tls::from_pem(cert.as_bytes(), other.nodes[&1].1.as_bytes(), certs.ca.as_bytes()).unwrap_err();
        assert!(err.contains("do not go together"), "{err}");
    }
}
