//! The node-to-node channel (our design; byte-level spec in `docs/node-channel.md`).
//!
//! Nodes talk to each other with HTTP(S) POSTs to paths under `/node/v1/`. Every request is
//! signed by the sending node's Ed25519 key over method, path, timestamp, both node keys and a
//! BLAKE2b-256 hash of the body ([`auth`]), and the receiver accepts it only from a node in its
//! current node list, within 60 s of its own clock. The endpoints:
//!
//! * `/node/v1/rpc`: a client RPC forwarded by a swarm member (recursive requests, network §3.8);
//! * `/node/v1/onion`: an onion layer relayed by the previous hop (network §7.4);
//! * `/node/v1/messages`: bulk message transfer with namespaces (swarm changes);
//! * `/node/v1/digest`, `/node/v1/accounts`, `/node/v1/fetch`: catch-up between swarm members
//!   (compare digests, then pull what is missing; see `crate::sync`).
//!
//! [`PeerClient`] is the sending side; [`router`] the receiving side, mounted by the server.
//! Peer certificates are never verified (nodes serve self-signed certificates): peers are
//! authenticated by their signatures, and everything that matters in a reply is protected end
//! to end (onion replies are encrypted, swarm results are signed per node).

pub mod auth;
mod http;
mod server;
pub mod wire;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::Value;
use session_protocol::onion::{EncType, encode_combined_payload};

pub use self::server::router;
use self::wire::{
    AccountsReply, AccountsRequest, DigestReply, DigestRequest, FetchReply, FetchRequest, MessagesReply,
    MessagesRequest, WireMessage,
};
use crate::AccountKey;
use crate::identity::NodeIdentity;
use crate::nodelist::NodeRecord;
use crate::store::StoredMessage;

/// Path of a forwarded client RPC.
pub const RPC_PATH: &str = "/node/v1/rpc";
/// Path of a relayed onion layer.
pub const ONION_PATH: &str = "/node/v1/onion";
/// Path of a bulk message transfer.
pub const MESSAGES_PATH: &str = "/node/v1/messages";
/// Path of a catch-up bucket comparison.
pub const DIGEST_PATH: &str = "/node/v1/digest";
/// Path of a catch-up account-digest listing.
pub const ACCOUNTS_PATH: &str = "/node/v1/accounts";
/// Path of a catch-up fetch.
pub const FETCH_PATH: &str = "/node/v1/fetch";

/// Timeout of a forwarded RPC (upstream's `sn.storage_cc`: 5 s).
pub const RPC_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout of an onion relay to the next hop (network §7.4: 30 s).
pub const ONION_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of one bulk transfer request.
pub const MESSAGES_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of one catch-up request (digest, accounts, fetch).
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of opening a connection (TCP, and TLS if any) to a peer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout of a proxied onion request to a server (network §7.4: 25 s).
pub const PROXY_TIMEOUT: Duration = Duration::from_secs(25);

/// Largest request body the `/node/v1/` endpoints accept: a 10 MiB onion layer plus metadata.
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024 + 64 * 1024;
/// Largest reply body read from a peer or a proxied server.
pub const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;
/// Bulk transfers are split into requests of about this many bytes.
pub const MESSAGES_CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// What a peer said to a forwarded request, or why it said nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerReply {
    /// The peer answered with this status and JSON body (or a JSON string for text bodies).
    Answered {
        /// HTTP-style status code.
        status: u16,
        /// The body.
        body: Value,
    },
    /// No answer within the timeout (or the peer could not be reached).
    Timeout,
    /// The answer could not be understood.
    BadResponse,
}

/// A channel request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The HTTP clients could not be built (TLS setup).
    #[error("cannot build the HTTP client: {0}")]
    Setup(#[source] reqwest::Error),
    /// The channel's TLS configuration could not be built.
    #[error("cannot set up TLS for the node channel: {0}")]
    Tls(#[source] rustls::Error),
    /// No complete answer within the timeout.
    #[error("request timed out")]
    Timeout,
    /// Connecting or talking to the peer (or the proxied server) failed.
    #[error("peer unreachable: {0}")]
    Unreachable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The request would exceed the size limits.
    #[error("request too large")]
    TooLarge,
    /// The reply exceeded [`MAX_REPLY_BYTES`].
    #[error("reply too large")]
    ReplyTooLarge,
    /// The peer answered with a non-success status.
    #[error("peer refused the request with status {0}")]
    Refused(u16),
    /// The reply could not be parsed.
    #[error("malformed reply from peer")]
    BadResponse,
    /// A header value could not be formed (never happens for the values the channel sends).
    #[error("invalid request header")]
    BadHeader,
}

/// A complete HTTP reply from a peer or a proxied server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// `Content-Type`, if the reply had a valid one.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// Client side of the channel, plus the HTTP client that proxies onion requests to servers.
/// Cheap to clone (the connection pools are shared).
#[derive(Debug, Clone)]
pub struct PeerClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    identity: NodeIdentity,
    /// Node-to-node: keep-alive pool, no certificate verification ([`http`]).
    peers: http::ChannelHttp,
    /// Onion proxy to servers: certificate verification, no redirects.
    proxy: reqwest::Client,
}

impl PeerClient {
    /// A client that signs with the node's identity. Installs rustls' ring provider as the
    /// process default if none is installed yet (reqwest uses the default provider).
    pub fn new(identity: NodeIdentity) -> Result<Self, PeerError> {
        crate::server::tls::install_crypto_provider();
        let peers = http::ChannelHttp::new(CONNECT_TIMEOUT, USER_AGENT).map_err(PeerError::Tls)?;
        let proxy = match proxy_client(None) {
            Ok(client) => client,
            Err(e) => {
                // Usually: no CA certificates on this machine. Plain-http proxying still works.
                tracing::warn!(error = %e, "no system CA certificates; onion proxying to https servers will fail");
                proxy_client(Some(Vec::new())).map_err(PeerError::Setup)?
            }
        };
        Ok(Self { inner: Arc::new(Inner { identity, peers, proxy }) })
    }

    /// The identity requests are signed with.
    pub fn identity(&self) -> &NodeIdentity {
        &self.inner.identity
    }

    /// Forwards a parsed client RPC (`method`, `params`) to `peer` for it to run locally as a
    /// swarm member (network §3.8); 5 s timeout.
    pub async fn forward_rpc(&self, peer: &NodeRecord, method: &str, params: &Value) -> PeerReply {
        #[derive(Serialize)]
        struct Body<'a> {
            method: &'a str,
            params: &'a Value,
        }
        let Ok(body) = serde_json::to_vec(&Body { method, params }) else { return PeerReply::BadResponse };
        match self.post(peer, RPC_PATH, body, RPC_TIMEOUT).await {
            Ok(reply) => {
                let is_json =
                    reply.content_type.as_deref().is_some_and(|t| t.starts_with("application/json"));
                let body = if is_json {
                    serde_json::from_slice(&reply.body).ok()
                } else {
                    String::from_utf8(reply.body).ok().map(Value::String)
                };
                match body {
                    Some(body) => PeerReply::Answered { status: reply.status, body },
                    None => PeerReply::BadResponse,
                }
            }
            Err(PeerError::Timeout | PeerError::Unreachable(_)) => PeerReply::Timeout,
            Err(_) => PeerReply::BadResponse,
        }
    }

    /// Relays an onion layer to `peer` (the next hop) with `hop_no`; 30 s timeout. Returns the
    /// downstream status and body, to be passed back unchanged.
    pub async fn relay_onion(
        &self,
        peer: &NodeRecord,
        ciphertext: &[u8],
        ephemeral_key: &[u8; 32],
        enc_type: EncType,
        hop_no: u64,
    ) -> Result<(u16, Vec<u8>), PeerError> {
        let meta = format!(
            r#"{{"enc_type":"{}","ephemeral_key":"{}","hop_no":{hop_no}}}"#,
            enc_type.as_str(),
            hex::encode(ephemeral_key)
        );
        let body = encode_combined_payload(ciphertext, meta.as_bytes()).map_err(|_| PeerError::TooLarge)?;
        let reply = self.post(peer, ONION_PATH, body, ONION_TIMEOUT).await?;
        Ok((reply.status, reply.body))
    }

    /// Sends messages to `peer` for it to store (`ON CONFLICT DO NOTHING`), namespaces included;
    /// large transfers are split into several requests. Returns how many the peer did not have.
    pub async fn send_messages(
        &self,
        peer: &NodeRecord,
        messages: Vec<(AccountKey, StoredMessage)>,
    ) -> Result<usize, PeerError> {
        let mut inserted = 0;
        let mut chunk = Vec::new();
        let mut chunk_bytes = 0;
        let mut messages = messages.into_iter().peekable();
        while let Some((account, message)) = messages.next() {
            chunk_bytes += WireMessage::estimated_len(&message);
            chunk.push(WireMessage::encode(&account, &message));
            let full = messages.peek().is_some_and(|(_, next)| {
                chunk_bytes + WireMessage::estimated_len(next) > MESSAGES_CHUNK_BYTES
            });
            if full || messages.peek().is_none() {
                inserted += self.send_chunk(peer, std::mem::take(&mut chunk)).await?;
                chunk_bytes = 0;
            }
        }
        Ok(inserted)
    }

    /// Sends one transfer request (`/node/v1/messages`) whose body was built with
    /// [`wire::encode_messages`]; returns the peer's counts. Any status but 200 is
    /// `PeerError::Refused`.
    pub async fn send_message_batch(
        &self,
        peer: &NodeRecord,
        body: Vec<u8>,
    ) -> Result<MessagesReply, PeerError> {
        if body.len() > MAX_REQUEST_BYTES {
            return Err(PeerError::TooLarge);
        }
        let reply = self.post(peer, MESSAGES_PATH, body, MESSAGES_TIMEOUT).await?;
        if reply.status != 200 {
            return Err(PeerError::Refused(reply.status));
        }
        serde_json::from_slice(&reply.body).map_err(|_| PeerError::BadResponse)
    }

    /// Compares bucket digests with `peer` (`/node/v1/digest`).
    pub async fn digest(&self, peer: &NodeRecord, request: &DigestRequest) -> Result<DigestReply, PeerError> {
        self.post_json(peer, DIGEST_PATH, request).await
    }

    /// Lists `peer`'s account digests in some buckets (`/node/v1/accounts`).
    pub async fn account_digests(
        &self,
        peer: &NodeRecord,
        request: &AccountsRequest,
    ) -> Result<AccountsReply, PeerError> {
        self.post_json(peer, ACCOUNTS_PATH, request).await
    }

    /// Fetches messages this node lacks from `peer` (`/node/v1/fetch`).
    pub async fn fetch(&self, peer: &NodeRecord, request: &FetchRequest) -> Result<FetchReply, PeerError> {
        self.post_json(peer, FETCH_PATH, request).await
    }

    /// POSTs `body` to a server for the onion proxy (network §7.4): `application/octet-stream`,
    /// no redirects, 25 s timeout, certificates verified for https.
    pub async fn proxy_post(&self, url: reqwest::Url, body: Vec<u8>) -> Result<HttpReply, PeerError> {
        let request =
            self.inner.proxy.post(url).header(reqwest::header::CONTENT_TYPE, "application/octet-stream");
        let response = request.body(body).send().await.map_err(transport_error)?;
        read_reply(response).await
    }

    // ---- internals ----

    async fn send_chunk(&self, peer: &NodeRecord, messages: Vec<WireMessage>) -> Result<usize, PeerError> {
        let body = serde_json::to_vec(&MessagesRequest { messages }).map_err(|_| PeerError::BadResponse)?;
        if body.len() > MAX_REQUEST_BYTES {
            return Err(PeerError::TooLarge);
        }
        let reply = self.post(peer, MESSAGES_PATH, body, MESSAGES_TIMEOUT).await?;
        if reply.status != 200 {
            return Err(PeerError::Refused(reply.status));
        }
        let parsed: MessagesReply =
            serde_json::from_slice(&reply.body).map_err(|_| PeerError::BadResponse)?;
        Ok(parsed.inserted)
    }

    /// POSTs a JSON request to a catch-up endpoint and parses the JSON reply; any status but
    /// 200 is `PeerError::Refused`.
    async fn post_json<Req: Serialize, Rep: serde::de::DeserializeOwned>(
        &self,
        peer: &NodeRecord,
        path: &'static str,
        request: &Req,
    ) -> Result<Rep, PeerError> {
        let body = serde_json::to_vec(request).map_err(|_| PeerError::TooLarge)?;
        if body.len() > MAX_REQUEST_BYTES {
            return Err(PeerError::TooLarge);
        }
        let reply = self.post(peer, path, body, CATCH_UP_TIMEOUT).await?;
        if reply.status != 200 {
            return Err(PeerError::Refused(reply.status));
        }
        serde_json::from_slice(&reply.body).map_err(|_| PeerError::BadResponse)
    }

    /// Signs and POSTs `body` to `peer`'s `path`, reading the whole reply.
    async fn post(
        &self,
        peer: &NodeRecord,
        path: &'static str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<HttpReply, PeerError> {
        let identity = &self.inner.identity;
        let now = unix_now_ms();
        let sender = identity.ed25519_hex();
        // The pair's channel key when the recipient's key allows it, a signature otherwise.
        let (header, signed) = match auth::mac_request(
            identity.channel_keys(),
            sender,
            &peer.pubkey_ed25519,
            "POST",
            path,
            now,
            &body,
        ) {
            Some(signed) => (auth::MAC_HEADER, signed),
            None => (
                auth::SIGNATURE_HEADER,
                auth::sign_request(identity.key(), sender, &peer.pubkey_ed25519, "POST", path, now, &body),
            ),
        };
        let value = |text: String| HeaderValue::try_from(text).map_err(|_| PeerError::BadHeader);
        let headers = [
            (CONTENT_TYPE, HeaderValue::from_static(content_type_for(path))),
            (HeaderName::from_static(auth::PUBKEY_HEADER), value(signed.pubkey)?),
            (HeaderName::from_static(auth::TIMESTAMP_HEADER), value(signed.timestamp)?),
            (HeaderName::from_static(header), value(signed.signature)?),
        ];
        let endpoint = http::Endpoint { ip: peer.public_ip, port: peer.storage_port, tls: peer.tls };
        let reply =
            self.inner.peers.post(endpoint, path, headers, body, timeout, MAX_REPLY_BYTES).await.map_err(
                |e| match e {
                    http::HttpError::Timeout => PeerError::Timeout,
                    http::HttpError::TooLarge => PeerError::ReplyTooLarge,
                    other => PeerError::Unreachable(Box::new(other)),
                },
            )?;
        Ok(HttpReply { status: reply.status, content_type: reply.content_type, body: reply.body })
    }
}

/// `User-Agent` of every request this node makes.
const USER_AGENT: &str = concat!("session-node/", env!("CARGO_PKG_VERSION"));

/// The onion proxy's HTTP client: certificates verified against the system roots, or only
/// against `roots` when given.
fn proxy_client(roots: Option<Vec<reqwest::Certificate>>) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .tls_backend_rustls()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(PROXY_TIMEOUT)
        .user_agent(USER_AGENT);
    if let Some(roots) = roots {
        builder = builder.tls_certs_only(roots);
    }
    builder.build()
}

fn content_type_for(path: &str) -> &'static str {
    if path == ONION_PATH { "application/octet-stream" } else { "application/json" }
}

fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn transport_error(e: reqwest::Error) -> PeerError {
    if e.is_timeout() { PeerError::Timeout } else { PeerError::Unreachable(Box::new(e)) }
}

/// Reads a whole reply, refusing bodies over [`MAX_REPLY_BYTES`].
async fn read_reply(mut response: reqwest::Response) -> Result<HttpReply, PeerError> {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if response.content_length().is_some_and(|n| n > MAX_REPLY_BYTES as u64) {
        return Err(PeerError::ReplyTooLarge);
    }
    let mut body = Vec::with_capacity(response.content_length().map_or(0, |n| n as usize));
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err(PeerError::ReplyTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpReply { status, content_type, body })
}
