//! The channel's HTTP/1.1 client: keep-alive connections pooled per peer endpoint, plain TCP or
//! TLS, and nothing else — no URL parsing, redirects, proxies or cookies.
//!
//! Peers serve self-signed certificates, so the TLS side accepts any certificate (it still checks
//! the handshake's signatures with the certificate's key): a peer is authenticated by the
//! channel's MAC or signature on every request and reply that matters, not by its certificate.
//! A general client (reqwest) cost a URL parse per request and per response on the onion-relay
//! path; this one costs a pool lookup.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Idle connections kept per endpoint.
const MAX_IDLE_PER_ENDPOINT: usize = 32;

/// An idle connection older than this is closed rather than reused: below the 30 s after which
/// a node closes an idle connection (`server::HEADER_TIMEOUT`), so a request rarely meets a
/// connection the peer is closing.
const IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// Where a peer listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Address.
    pub ip: Ipv4Addr,
    /// Port.
    pub port: u16,
    /// HTTPS.
    pub tls: bool,
}

/// A whole reply.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// A request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Connecting (TCP or TLS) failed.
    #[error("connecting: {0}")]
    Connect(#[source] std::io::Error),
    /// The HTTP exchange failed.
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    /// A header or the request could not be built.
    #[error("bad request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The reply body is larger than allowed.
    #[error("reply too large")]
    TooLarge,
    /// No whole reply in time.
    #[error("timed out")]
    Timeout,
}

/// One HTTP/1.1 connection's sending side.
type Sender = SendRequest<Full<Bytes>>;

/// The pooled client. Cheap to share behind an `Arc`.
pub struct ChannelHttp {
    idle: Mutex<HashMap<Endpoint, Vec<(Sender, Instant)>>>,
    tls: tokio_rustls::TlsConnector,
    connect_timeout: Duration,
    user_agent: HeaderValue,
}

impl std::fmt::Debug for ChannelHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelHttp").field("connect_timeout", &self.connect_timeout).finish_non_exhaustive()
    }
}

impl ChannelHttp {
    /// A client with rustls' ring provider (the node's only TLS provider).
    pub fn new(connect_timeout: Duration, user_agent: &'static str) -> Result<Self, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        Ok(Self {
            idle: Mutex::new(HashMap::new()),
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            connect_timeout,
            user_agent: HeaderValue::from_static(user_agent),
        })
    }

    /// POSTs `body` to `endpoint`'s `path` with `headers`, and reads the whole reply (at most
    /// `max_reply` bytes), all within `timeout`.
    pub async fn post(
        &self,
        endpoint: Endpoint,
        path: &'static str,
        headers: [(HeaderName, HeaderValue); 4],
        body: Vec<u8>,
        timeout: Duration,
        max_reply: usize,
    ) -> Result<Reply, HttpError> {
        let body = Bytes::from(body);
        let make = || -> Result<Request<Full<Bytes>>, HttpError> {
            let mut request = Request::builder()
                .method(Method::POST)
                .uri(path)
                .header(hyper::header::HOST, host_header(endpoint))
                .header(hyper::header::USER_AGENT, self.user_agent.clone())
                .body(Full::new(body.clone()))?;
            request.headers_mut().extend(headers.clone());
            Ok(request)
        };
        let exchange = async {
            let (response, sender) = self.send(endpoint, make).await?;
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get(hyper::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut incoming = response.into_body();
            let mut body = Vec::new();
            while let Some(frame) = incoming.frame().await {
                if let Ok(data) = frame?.into_data() {
                    if body.len() + data.len() > max_reply {
                        return Err(HttpError::TooLarge);
                    }
                    body.extend_from_slice(&data);
                }
            }
            // The whole exchange is done: the connection can take the next request.
            self.checkin(endpoint, sender);
            Ok(Reply { status, content_type, body })
        };
        tokio::time::timeout(timeout, exchange).await.unwrap_or(Err(HttpError::Timeout))
    }

    /// Sends the request `make` builds on an idle connection to `endpoint` if one is usable,
    /// else on a new one. A request an idle connection could not take (closed meanwhile) goes on
    /// the next; one that an idle connection lost (the peer closed it as the request went out,
    /// e.g. after a restart) is sent once more on a new connection: every channel request may be
    /// repeated (stores and transfers are idempotent, the rest only read). Returns the response
    /// head and the connection, to be checked in once the body is read.
    async fn send(
        &self,
        endpoint: Endpoint,
        make: impl Fn() -> Result<Request<Full<Bytes>>, HttpError>,
    ) -> Result<(hyper::Response<hyper::body::Incoming>, Sender), HttpError> {
        let mut request = make()?;
        while let Some(mut sender) = self.checkout(endpoint) {
            // Ready once the connection has finished the previous exchange; an error means it
            // closed, and nothing was sent.
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => return Ok((response, sender)),
                Err(mut e) => match e.take_message() {
                    // Not sent: try the next connection.
                    Some(unsent) => request = unsent,
                    None => {
                        let error = e.into_error();
                        if error.is_incomplete_message() || error.is_canceled() {
                            request = make()?;
                            break;
                        }
                        return Err(HttpError::Http(error));
                    }
                },
            }
        }
        let mut sender = self.connect(endpoint).await?;
        let response = sender.send_request(request).await?;
        Ok((response, sender))
    }

    fn checkout(&self, endpoint: Endpoint) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let list = idle.get_mut(&endpoint)?;
        while let Some((sender, since)) = list.pop() {
            if since.elapsed() < IDLE_TIMEOUT && !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    fn checkin(&self, endpoint: Endpoint, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let list = idle.entry(endpoint).or_default();
        if list.len() < MAX_IDLE_PER_ENDPOINT {
            list.push((sender, Instant::now()));
        }
    }

    async fn connect(&self, endpoint: Endpoint) -> Result<Sender, HttpError> {
        let connect = async {
            let tcp = tokio::net::TcpStream::connect(SocketAddr::from((endpoint.ip, endpoint.port))).await?;
            tcp.set_nodelay(true)?;
            if endpoint.tls {
                let name = ServerName::IpAddress(std::net::IpAddr::V4(endpoint.ip).into());
                let tls = self.tls.connect(name, tcp).await?;
                handshake(TokioIo::new(tls)).await
            } else {
                handshake(TokioIo::new(tcp)).await
            }
        };
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(result) => result.map_err(HttpError::Connect),
            Err(_) => Err(HttpError::Connect(std::io::ErrorKind::TimedOut.into())),
        }
    }
}

/// HTTP/1.1 handshake on a connected stream; the connection is driven by a task of its own,
/// which ends when the connection closes.
async fn handshake<T>(io: TokioIo<T>) -> std::io::Result<Sender>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) =
        hyper::client::conn::http1::handshake(io).await.map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        // A closed or broken connection only means the next request opens a new one.
        let _ = connection.await;
    });
    Ok(sender)
}

fn host_header(endpoint: Endpoint) -> HeaderValue {
    HeaderValue::try_from(format!("{}:{}", endpoint.ip, endpoint.port))
        .unwrap_or_else(|_| HeaderValue::from_static("node"))
}

/// Accepts any certificate, but checks the handshake signatures with its key (so the TLS session
/// is with whoever holds that key; who that is, the channel's authentication decides).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use hyper::service::service_fn;

    use super::*;

    /// A plain HTTP/1.1 server on 127.0.0.1: `/echo` answers the request body, `/big` 64 KiB,
    /// `/slow` after 5 s. Counts the connections it accepted; aborting it closes them all.
    struct Server {
        port: u16,
        accepted: Arc<AtomicUsize>,
        tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    }

    impl Server {
        async fn start(port: u16) -> Self {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let accepted = Arc::new(AtomicUsize::new(0));
            let tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
            let (count, list) = (accepted.clone(), tasks.clone());
            let accept = tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    count.fetch_add(1, Ordering::SeqCst);
                    let service = service_fn(|request: Request<hyper::body::Incoming>| async move {
                        let path = request.uri().path().to_owned();
                        let body = request.into_body().collect().await?.to_bytes();
                        let reply = match path.as_str() {
                            "/big" => Bytes::from(vec![7u8; 64 * 1024]),
                            "/slow" => {
                                tokio::time::sleep(Duration::from_secs(5)).await;
                                body
                            }
                            _ => body,
                        };
                        Ok::<_, hyper::Error>(hyper::Response::new(Full::new(reply)))
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    let task = tokio::spawn(async move {
                        let _ = connection.await;
                    });
                    list.lock().unwrap().push(task);
                }
            });
            tasks.lock().unwrap().push(accept);
            Self { port, accepted, tasks }
        }

        fn endpoint(&self) -> Endpoint {
            Endpoint { ip: Ipv4Addr::LOCALHOST, port: self.port, tls: false }
        }

        /// Stops accepting and closes every connection (the listener and the sockets are
        /// dropped when this returns).
        async fn stop(&self) {
            let tasks: Vec<_> = self.tasks.lock().unwrap().drain(..).collect();
            for task in tasks {
                task.abort();
                let _ = task.await;
            }
        }
    }

    fn headers() -> [(HeaderName, HeaderValue); 4] {
        let h = |name: &'static str, value: &'static str| {
            (HeaderName::from_static(name), HeaderValue::from_static(value))
        };
        [h("content-type", "application/json"), h("x-a", "1"), h("x-b", "2"), h("x-c", "3")]
    }

    fn client() -> ChannelHttp {
        ChannelHttp::new(Duration::from_secs(2), "test").unwrap()
    }

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn keeps_one_connection_and_recovers_after_the_peer_restarts() {
        let server = Server::start(0).await;
        let http = client();
        for i in 0..5u8 {
            let reply = http.post(server.endpoint(), "/echo", headers(), vec![i; 10], T, 1024).await.unwrap();
            assert_eq!((reply.status, reply.body), (200, vec![i; 10]));
        }
        assert_eq!(server.accepted.load(Ordering::SeqCst), 1, "one keep-alive connection");

        // The peer restarts on the same port: the pooled connection is dead, a new one is made.
        server.stop().await;
        let again = Server::start(server.port).await;
        let reply =
            http.post(again.endpoint(), "/echo", headers(), b"after".to_vec(), T, 1024).await.unwrap();
        assert_eq!(reply.body, b"after");
        assert_eq!(again.accepted.load(Ordering::SeqCst), 1);

        // Nobody listening: a connection error, quickly.
        again.stop().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let err = http.post(again.endpoint(), "/echo", headers(), Vec::new(), T, 1024).await.unwrap_err();
        assert!(matches!(err, HttpError::Connect(_) | HttpError::Http(_)), "{err:?}");
    }

    #[tokio::test]
    async fn concurrent_requests_open_connections_that_are_then_reused() {
        let server = Server::start(0).await;
        let http = Arc::new(client());
        let round = || {
            let tasks: Vec<_> = (0..4u8)
                .map(|i| {
                    let (http, endpoint) = (http.clone(), server.endpoint());
                    tokio::spawn(async move {
                        http.post(endpoint, "/echo", headers(), vec![i; 3], T, 1024).await.unwrap().body
                    })
                })
                .collect();
            async move {
                for (i, task) in tasks.into_iter().enumerate() {
                    assert_eq!(task.await.unwrap(), vec![i as u8; 3]);
                }
            }
        };
        round().await;
        let after_first = server.accepted.load(Ordering::SeqCst);
        assert!((1..=4).contains(&after_first), "{after_first}");
        round().await;
        round().await;
        assert_eq!(server.accepted.load(Ordering::SeqCst), after_first, "the idle connections were reused");
    }

    #[tokio::test]
    async fn a_reply_over_the_limit_is_refused_and_a_slow_one_times_out() {
        let server = Server::start(0).await;
        let http = client();
        let err = http.post(server.endpoint(), "/big", headers(), Vec::new(), T, 1024).await.unwrap_err();
        assert!(matches!(err, HttpError::TooLarge), "{err:?}");
        let ok = http.post(server.endpoint(), "/big", headers(), Vec::new(), T, 64 * 1024).await.unwrap();
        assert_eq!(ok.body.len(), 64 * 1024);
        let err = http
            .post(server.endpoint(), "/slow", headers(), Vec::new(), Duration::from_millis(200), 1024)
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::Timeout), "{err:?}");
    }
}
