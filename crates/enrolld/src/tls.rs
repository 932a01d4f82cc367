//! HTTPS with rustls: a listener that runs each handshake in its own task
//! (a slow client cannot stall accept) and hands the peer's certificate to
//! handlers through [`ConnInfo`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the server's TLS configuration: TLS 1.2 and 1.3, the service
/// certificate, and optional client certificates (the API authenticates
/// by package credential). `anchors_pem` holds the root and the issuing
/// CA: they are the hints that make browsers offer the right certificate.
///
/// The handshake proves that the peer holds the key of the certificate it
/// presents; *whose* certificate it is, is decided by the application
/// against the database (byte for byte one we issued, current, not
/// revoked: see [`ConnInfo::client_cert`]). A certificate we did not issue
/// thus gets a clear refusal page or problem document instead of a TLS
/// alert that browsers and curl report as a broken connection.
pub fn server_config(
    cert_chain_pem: &str,
    key_pem: &str,
    anchors_pem: &str,
) -> Result<ServerConfig> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert_chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .context("the service certificate is not valid PEM")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .context("the service key is not valid PEM")?;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(anchors_pem.as_bytes()) {
        roots
            .add(c.context("a CA certificate is not valid PEM")?)
            .context("a CA certificate is not usable as a trust anchor")?;
    }
    let webpki = WebPkiClientVerifier::builder(Arc::new(roots))
        .allow_unauthenticated()
        .build()
        .context("cannot build the client-certificate verifier")?;
    let mut cfg = ServerConfig::builder()
        .with_client_cert_verifier(Arc::new(PossessionOnly(webpki)))
        .with_single_cert(chain, key)
        .context("the service certificate does not match its key")?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Accepts any client certificate whose key signs the handshake, leaving
/// the question of who issued it to the application. The signature checks
/// and the CA hints are webpki's.
#[derive(Debug)]
struct PossessionOnly(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for PossessionOnly {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
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

/// Accepts TCP, completes TLS in spawned tasks, yields finished streams.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub async fn bind(addr: &str, cfg: ServerConfig) -> Result<TlsListener> {
        let tcp = TcpListener::bind(addr).await.with_context(|| {
            format!(
                "cannot listen on {addr} (another enrolld running? choose another address \
                     with --listen)"
            )
        })?;
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(Arc::new(cfg));
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(async move {
            loop {
                let (sock, peer) = match tcp.accept().await {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(sock)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => tracing::info!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { rx, local })
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(v) => v,
            // The accept task never ends while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// What handlers learn about the connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// The client certificate (leaf, DER) the peer presented and proved to
    /// hold the key of. Not yet checked against anything: handlers must
    /// compare it with the certificates we issued before trusting it.
    pub client_cert: Option<Vec<u8>>,
}

impl Connected<IncomingStream<'_, TlsListener>> for ConnInfo {
    fn connect_info(s: IncomingStream<'_, TlsListener>) -> Self {
        let client_cert = s
            .io()
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.as_ref().to_vec());
        ConnInfo {
            peer: *s.remote_addr(),
            client_cert,
        }
    }
}
