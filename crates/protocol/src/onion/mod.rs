//! Onion requests (network §7): combined payload, hop encryption, building, peeling, responses, v4 bodies.
//!
//! * [`payload`]: the `[u32 LE N][N bytes][JSON]` layer format (§7.1).
//! * [`hop`]: per-hop key derivation and AEAD for `aes-gcm` and `xchacha20` (§7.2, crypto §8.4).
//! * [`builder`]: the client side, wrapping a request for a path of snodes (§7.3).
//! * [`peel`]: the node side, removing one layer and deciding what to do with it (§7.4).
//! * [`response`]: decrypting what comes back (§7.6), and sealing a reply as a node.
//! * [`v4`]: the bencoded v4 request/response bodies used for servers (§7.7).
//!
//! Everything is pure: ephemeral secrets and nonces are arguments (with `*_random` conveniences
//! that draw them from a caller-supplied `rng`).

pub mod builder;
pub mod hop;
pub mod payload;
pub mod peel;
pub mod response;
pub mod v4;

pub use builder::{
    BuildError, Destination, FinalOptions, LayerSecrets, LayerTrace, MAX_PATH_LEN, NodeKeys, OnionRequest,
    Protocol, RequestSpec, ServerDestination, build_request, build_request_random, build_request_traced,
};
pub use hop::{EncType, EncTypeError, HopError, HopKey};
pub use payload::{CombinedPayload, MAX_PAYLOAD_LEN, PayloadError, encode_combined_payload};
pub use peel::{
    EntryRequest, FinalRequest, MAX_ONION_HOPS, PeelError, PeeledLayer, ProxyRequest, RelayRequest, Route,
    RouteError, is_target_allowed, parse_entry_request, peel_layer, peel_layer_with, peel_request,
};
pub use response::{DestinationKind, ResponseContext, ResponseError, seal_response};
pub use v4::{
    V4Body, V4Error, V4Request, V4RequestParts, V4Response, encode_v4_request, encode_v4_response, parse_v4,
    parse_v4_request, parse_v4_response,
};

/// Writes `s` as a JSON string literal (quoted and escaped) onto `out`.
pub(crate) fn write_json_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing a JSON string into a Vec cannot fail");
}

/// Writes 32 bytes as a quoted lowercase hex JSON string onto `out`, without allocating.
pub(crate) fn write_json_hex32(out: &mut Vec<u8>, bytes: &[u8; 32]) {
    let mut buf = [0u8; 64];
    hex::encode_to_slice(bytes, &mut buf).expect("64-byte buffer holds 32 bytes of hex");
    out.push(b'"');
    out.extend_from_slice(&buf);
    out.push(b'"');
}
