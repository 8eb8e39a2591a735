//! Criterion benchmarks of the protocol core, with libsodium measured in the same process as the
//! baseline for the operations upstream Session does with it.
//!
//! Run: `cargo bench -p session-protocol --bench protocol` (whole suite, about 2 minutes), or
//! add a filter: `cargo bench -p session-protocol --bench protocol -- v1`.
//! Measurement is kept short ([`config`]) so the suite fits a shared CI-sized machine; figures
//! are for spotting regressions and comparing against libsodium, not for publication.
//!
//! After the `v1`, `keys` and `primitives` groups a line `ratio <what> ours/libsodium = R` is
//! printed. It comes from [`ratio`], an interleaved timing loop of its own (fastest of 151
//! alternating ~2 ms batches per side), so both sides see the same machine load; below 1.00
//! means we are faster.
//!
//! Layout: one `fn bench_<area>(c: &mut Criterion)` per group, all listed in
//! [`criterion_group!`] at the bottom. Use the shared fixtures ([`sender`], [`recipient`],
//! [`payload`]) so figures stay comparable. The libsodium side lives in [`sodium`].

// The libsodium baseline is called through its C API, and a benchmark reads the clock (the
// crate's clippy.toml bans `Instant::now` for the library, where time is an argument).
#![allow(unsafe_code, clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use rand::rngs::SysRng;
use rand_core::UnwrapErr;
use session_protocol::keys::verify_ed25519;
use session_protocol::message_hash::{MessageHash, Namespace};
use session_protocol::onion::{
    Destination, EncType, FinalOptions, LayerSecrets, NodeKeys, PeeledLayer, RequestSpec, build_request,
    peel_request,
};
use session_protocol::{IdentityKey, mnemonic, primitives, v1};

/// Payload size for the per-message benchmarks.
const PAYLOAD_LEN: usize = 1024;

/// Short measurement settings: 1 s warm-up, ~3 s measurement, 30 samples per benchmark.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

// ---- groups ----

/// Session Protocol v1 (crypto §3.1–3.2), 1 KiB message: ours against libsodium doing exactly
/// the same steps (sign `M || A || Y`, seal `M || A || SIG`; open, verify, convert `A`).
/// Both draw the ephemeral key from the OS (`getrandom`), as libsodium's `crypto_box_seal` does.
fn bench_v1(c: &mut Criterion) {
    sodium::init();
    let sender = sender();
    let recipient = recipient();
    let message = payload();
    let recipient_x = *recipient.x25519_public();
    let sender_sk = sodium::secret_key(&sender);
    let sender_ed = sender.ed25519_public();
    let mut rng = UnwrapErr(SysRng);

    let ciphertext = v1::encrypt_for_recipient(&sender, &recipient_x, &message, &mut rng).expect("valid key");
    // Each side must open what the other sealed, or the comparison means nothing.
    let sodium_ciphertext = sodium::v1_encrypt(&sender_sk, &sender_ed, &recipient_x, &message);
    assert_eq!(v1::decrypt_incoming(&recipient, &sodium_ciphertext).expect("opens").message, message);
    let opened = sodium::v1_decrypt(&recipient_x, recipient.x25519_secret(), &ciphertext);
    assert_eq!((opened.0, opened.1, opened.2), (message.clone(), sender_ed, *sender.x25519_public()));

    let mut group = c.benchmark_group("v1");
    group.throughput(Throughput::Bytes(PAYLOAD_LEN as u64));
    group.bench_function(BenchmarkId::new("encrypt/ours", PAYLOAD_LEN), |b| {
        b.iter(|| v1::encrypt_for_recipient(&sender, black_box(&recipient_x), black_box(&message), &mut rng))
    });
    group.bench_function(BenchmarkId::new("encrypt/libsodium", PAYLOAD_LEN), |b| {
        b.iter(|| sodium::v1_encrypt(&sender_sk, &sender_ed, black_box(&recipient_x), black_box(&message)))
    });
    group.bench_function(BenchmarkId::new("decrypt/ours", PAYLOAD_LEN), |b| {
        b.iter(|| v1::decrypt_incoming(&recipient, black_box(&ciphertext)).expect("opens"))
    });
    group.bench_function(BenchmarkId::new("decrypt/libsodium", PAYLOAD_LEN), |b| {
        b.iter(|| sodium::v1_decrypt(&recipient_x, recipient.x25519_secret(), black_box(&ciphertext)))
    });
    group.finish();

    ratio(
        "v1 encrypt",
        || {
            black_box(
                v1::encrypt_for_recipient(&sender, black_box(&recipient_x), &message, &mut rng)
                    .expect("valid key"),
            );
        },
        || {
            black_box(sodium::v1_encrypt(&sender_sk, &sender_ed, black_box(&recipient_x), &message));
        },
    );
    ratio(
        "v1 decrypt",
        || {
            black_box(v1::decrypt_incoming(&recipient, black_box(&ciphertext)).expect("opens"));
        },
        || {
            black_box(sodium::v1_decrypt(&recipient_x, recipient.x25519_secret(), black_box(&ciphertext)));
        },
    );
}

/// Identity key derivation (crypto §1.1): seed → Ed25519 key pair + X25519 key pair, against
/// libsodium's `crypto_sign_seed_keypair` + `crypto_sign_ed25519_sk_to_curve25519` +
/// `crypto_scalarmult_base`.
fn bench_keys(c: &mut Criterion) {
    sodium::init();
    let seed = [0x42u8; 32];
    let ours = IdentityKey::from_seed_bytes(&seed);
    let theirs = sodium::keygen(&seed);
    assert_eq!((theirs.0, theirs.1), (ours.ed25519_public(), *ours.x25519_public()));

    let mut group = c.benchmark_group("keys");
    group.bench_function("keygen/ours", |b| b.iter(|| IdentityKey::from_seed_bytes(black_box(&seed))));
    group.bench_function("keygen/libsodium", |b| b.iter(|| sodium::keygen(black_box(&seed))));
    group.finish();

    ratio(
        "keygen",
        || {
            black_box(IdentityKey::from_seed_bytes(black_box(&seed)));
        },
        || {
            black_box(sodium::keygen(black_box(&seed)));
        },
    );
}

/// The curve operations underneath v1, each against its libsodium twin: Ed25519 sign and
/// verify of a 1 KiB message (plus the 96 bytes v1 signs), and X25519 with a variable point
/// (`crypto_scalarmult`, the sealed box's key agreement).
fn bench_primitives(c: &mut Criterion) {
    sodium::init();
    let sender = sender();
    let sk = sodium::secret_key(&sender);
    let pk = sender.ed25519_public();
    let message = payload();
    let signature = sender.sign(&message);
    let (secret, public) = (*recipient().x25519_secret(), *sender.x25519_public());
    assert_eq!(sodium::sign(&sk, &message), signature);
    assert_eq!(*primitives::x25519(&secret, &public).expect("valid"), sodium::x25519(&secret, &public));

    let mut group = c.benchmark_group("primitives");
    group.bench_function("ed25519 sign/ours", |b| b.iter(|| sender.sign(black_box(&message))));
    group.bench_function("ed25519 sign/libsodium", |b| b.iter(|| sodium::sign(&sk, black_box(&message))));
    let signer = sender.signer();
    assert_eq!(signer.sign(&message), signature);
    group.bench_function("ed25519 sign/prepared (AWS-LC)", |b| b.iter(|| signer.sign(black_box(&message))));
    group.bench_function("ed25519 verify/ours", |b| {
        b.iter(|| assert!(verify_ed25519(&pk, black_box(&message), &signature)))
    });
    group.bench_function("ed25519 verify/libsodium", |b| {
        b.iter(|| assert!(sodium::verify(&pk, black_box(&message), &signature)))
    });
    group.bench_function("x25519/ours", |b| b.iter(|| primitives::x25519(&secret, black_box(&public))));
    group.bench_function("x25519/libsodium", |b| b.iter(|| sodium::x25519(&secret, black_box(&public))));
    group.finish();

    ratio(
        "ed25519 sign",
        || {
            black_box(sender.sign(black_box(&message)));
        },
        || {
            black_box(sodium::sign(&sk, black_box(&message)));
        },
    );
    ratio(
        "ed25519 sign, prepared AWS-LC key vs dalek",
        || {
            black_box(signer.sign(black_box(&message)));
        },
        || {
            black_box(sender.sign(black_box(&message)));
        },
    );
    ratio(
        "ed25519 verify",
        || assert!(verify_ed25519(&pk, black_box(&message), &signature)),
        || assert!(sodium::verify(&pk, black_box(&message), &signature)),
    );
    ratio(
        "x25519",
        || {
            black_box(primitives::x25519(&secret, black_box(&public)).expect("valid"));
        },
        || {
            black_box(sodium::x25519(&secret, black_box(&public)));
        },
    );
}

/// Onion requests (network §7.3–7.4): building a request for a 3-node path plus a destination
/// snode (4 layers, 1 KiB RPC body) with each encryption type, and the entry node peeling its
/// layer.
fn bench_onion(c: &mut Criterion) {
    let fixture = OnionFixture::new();
    let mut group = c.benchmark_group("onion");
    for enc_type in [EncType::XChaCha20, EncType::AesGcm] {
        let spec = fixture.spec(enc_type);
        group.bench_function(BenchmarkId::new("build 3 hops + destination", enc_type), |b| {
            b.iter(|| build_request(black_box(&spec), &fixture.secrets).expect("valid path"))
        });
        let request = build_request(&spec, &fixture.secrets).expect("valid path");
        group.bench_function(BenchmarkId::new("peel one layer", enc_type), |b| {
            b.iter(|| fixture.peel(black_box(&request.body)))
        });
    }
    group.finish();
}

/// A 3-node path plus a destination snode, fixed layer secrets, and a 1 KiB RPC body.
struct OnionFixture {
    /// (public keys, X25519 secret) of guard, middle, exit and destination.
    nodes: Vec<(NodeKeys, [u8; 32])>,
    path: Vec<NodeKeys>,
    body: Vec<u8>,
    secrets: Vec<LayerSecrets>,
}

impl OnionFixture {
    fn new() -> Self {
        let nodes: Vec<(NodeKeys, [u8; 32])> = (1u8..=4)
            .map(|i| {
                let (secret, x25519) = primitives::box_seed_keypair(&[i; 32]);
                let ed25519 = IdentityKey::from_seed_bytes(&[i + 0x40; 32]).ed25519_public();
                (NodeKeys { ed25519, x25519 }, *secret)
            })
            .collect();
        let path = nodes[..3].iter().map(|(keys, _)| *keys).collect();
        let secrets = (0u8..4).map(|i| LayerSecrets::new([0x70 + i; 32], [0x30 + i; 24])).collect();
        Self { nodes, path, body: payload(), secrets }
    }

    fn spec(&self, enc_type: EncType) -> RequestSpec<'_> {
        RequestSpec {
            enc_type,
            path: &self.path,
            destination: Destination::Snode {
                node: self.nodes[3].0,
                body: &self.body,
                options: FinalOptions::default(),
            },
            hop_no: None,
        }
    }

    /// The guard node peels its layer of `body`.
    fn peel(&self, body: &[u8]) -> PeeledLayer {
        let (guard, guard_secret) = &self.nodes[0];
        peel_request(guard_secret, &guard.x25519, body).expect("our layer")
    }
}

/// The storage server's message hash (network §3.2) of a 1 KiB message (the bytes the client
/// sent as base64, decoded), in namespace 0.
fn bench_message_hash(c: &mut Criterion) {
    let pubkey = recipient().session_id().to_bytes();
    let data = payload();
    let mut group = c.benchmark_group("message hash");
    group.throughput(Throughput::Bytes(PAYLOAD_LEN as u64));
    group.bench_function(BenchmarkId::new("MessageHash::compute", PAYLOAD_LEN), |b| {
        b.iter(|| MessageHash::compute(black_box(&pubkey), Namespace::DEFAULT, black_box(&data)))
    });
    group.finish();
}

/// Recovery-phrase decoding (crypto §2.3): a 25-word (32-byte seed) and a 13-word (legacy
/// 16-byte seed) phrase, checksum word included.
fn bench_mnemonic(c: &mut Criterion) {
    let mut group = c.benchmark_group("mnemonic");
    for (words, seed_len) in [(25usize, 32usize), (13, 16)] {
        let seed: Vec<u8> = (0u8..).take(seed_len).collect();
        let phrase = mnemonic::encode(&seed).expect("16 or 32 bytes encode");
        assert_eq!(phrase.word_count(), words);
        let text = phrase.to_text();
        group.bench_with_input(BenchmarkId::new("decode", format!("{words} words")), &text, |b, text| {
            b.iter(|| mnemonic::decode(black_box(text)).expect("valid phrase"));
        });
    }
    group.finish();
}

// ---- same-process ratio ----

/// Times `ours` and `theirs` in 151 pairs of ~2 ms batches, back to back in alternating order,
/// and prints the ratio of each side's fastest batch: on a shared machine most batches lose time
/// to other processes, and the fastest one is the best estimate of the unloaded cost. The
/// median of the per-pair ratios follows in parentheses; under heavy load it drifts toward 1.
fn ratio(what: &str, mut ours: impl FnMut(), mut theirs: impl FnMut()) {
    const PAIRS: usize = 151;
    const BATCH_TIME: Duration = Duration::from_millis(2);
    // Size batches to ~2 ms of the slower side.
    let start = Instant::now();
    let mut calls = 0u32;
    while start.elapsed() < BATCH_TIME {
        ours();
        theirs();
        calls += 1;
    }
    let per_batch = calls.max(1);
    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..per_batch {
            f();
        }
        start.elapsed() / per_batch
    };
    let mut ratios = Vec::with_capacity(PAIRS);
    let (mut best_ours, mut best_theirs) = (Duration::MAX, Duration::MAX);
    for pair in 0..PAIRS {
        let (a, b) = if pair % 2 == 0 {
            let a = time(&mut ours);
            (a, time(&mut theirs))
        } else {
            let b = time(&mut theirs);
            (time(&mut ours), b)
        };
        best_ours = best_ours.min(a);
        best_theirs = best_theirs.min(b);
        ratios.push(a.as_secs_f64() / b.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "ratio {what} ours/libsodium = {:.2}   (fastest batch per call: ours {best_ours:.2?}, libsodium \
         {best_theirs:.2?}; median of paired ratios {:.2})",
        best_ours.as_secs_f64() / best_theirs.as_secs_f64(),
        ratios[PAIRS / 2]
    );
}

// ---- shared fixtures ----

/// The sending account used by every per-message benchmark.
fn sender() -> IdentityKey {
    IdentityKey::from_seed_bytes(&[0x11u8; 32])
}

/// The receiving account used by every per-message benchmark.
fn recipient() -> IdentityKey {
    IdentityKey::from_seed_bytes(&[0x22u8; 32])
}

/// A [`PAYLOAD_LEN`]-byte message body.
fn payload() -> Vec<u8> {
    (0..PAYLOAD_LEN).map(|i| (i % 251) as u8).collect()
}

/// The libsodium baseline: the calls libsession-util makes, through `libsodium-sys-stable`
/// (bundled libsodium built from source).
mod sodium {
    use libsodium_sys as ffi;
    use session_protocol::IdentityKey;

    const SEAL_OVERHEAD: usize = 48;

    /// `sodium_init()`, once (idempotent in libsodium; it returns 1 when already done).
    pub fn init() {
        // SAFETY: sodium_init takes no arguments and is thread-safe.
        let rc = unsafe { ffi::sodium_init() };
        assert!(rc >= 0, "sodium_init failed");
    }

    /// The 64-byte libsodium secret key `seed || pubkey` of an account.
    pub fn secret_key(key: &IdentityKey) -> [u8; 64] {
        *key.secret_key_bytes()
    }

    /// `crypto_sign_seed_keypair` + `crypto_sign_ed25519_sk_to_curve25519` +
    /// `crypto_scalarmult_base`: (Ed25519 pk, X25519 pk, X25519 sk).
    pub fn keygen(seed: &[u8; 32]) -> ([u8; 32], [u8; 32], [u8; 32]) {
        let (mut ed_pk, mut ed_sk, mut x_sk, mut x_pk) = ([0u8; 32], [0u8; 64], [0u8; 32], [0u8; 32]);
        // SAFETY: every pointer is to a buffer of the size libsodium writes or reads.
        unsafe {
            assert_eq!(
                ffi::crypto_sign_seed_keypair(ed_pk.as_mut_ptr(), ed_sk.as_mut_ptr(), seed.as_ptr()),
                0
            );
            assert_eq!(ffi::crypto_sign_ed25519_sk_to_curve25519(x_sk.as_mut_ptr(), ed_sk.as_ptr()), 0);
            assert_eq!(ffi::crypto_scalarmult_base(x_pk.as_mut_ptr(), x_sk.as_ptr()), 0);
        }
        (ed_pk, x_pk, x_sk)
    }

    /// `crypto_sign_detached`.
    pub fn sign(sk: &[u8; 64], message: &[u8]) -> [u8; 64] {
        let mut signature = [0u8; 64];
        // SAFETY: 64-byte signature buffer, message read for its length, 64-byte secret key.
        let rc = unsafe {
            ffi::crypto_sign_detached(
                signature.as_mut_ptr(),
                std::ptr::null_mut(),
                message.as_ptr(),
                message.len() as u64,
                sk.as_ptr(),
            )
        };
        assert_eq!(rc, 0);
        signature
    }

    /// `crypto_sign_verify_detached`.
    pub fn verify(pk: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
        // SAFETY: 64-byte signature, message read for its length, 32-byte public key.
        unsafe {
            ffi::crypto_sign_verify_detached(
                signature.as_ptr(),
                message.as_ptr(),
                message.len() as u64,
                pk.as_ptr(),
            ) == 0
        }
    }

    /// `crypto_scalarmult` (X25519).
    pub fn x25519(secret: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
        let mut shared = [0u8; 32];
        // SAFETY: three 32-byte buffers.
        let rc = unsafe { ffi::crypto_scalarmult(shared.as_mut_ptr(), secret.as_ptr(), public.as_ptr()) };
        assert_eq!(rc, 0);
        shared
    }

    /// libsession `encrypt_for_recipient`: `crypto_sign_detached(M || A || Y)`, then
    /// `crypto_box_seal(M || A || SIG, Y)`.
    pub fn v1_encrypt(
        sender_sk: &[u8; 64],
        sender_ed: &[u8; 32],
        recipient_x: &[u8; 32],
        m: &[u8],
    ) -> Vec<u8> {
        let mut inner = Vec::with_capacity(m.len() + 96);
        inner.extend_from_slice(m);
        inner.extend_from_slice(sender_ed);
        inner.extend_from_slice(recipient_x);
        let mut signature = [0u8; 64];
        let mut out = vec![0u8; m.len() + 96 + SEAL_OVERHEAD];
        // SAFETY: signature is 64 bytes, `inner` is read for its length, `out` has room for
        // the sealed box (message + 48).
        unsafe {
            let rc = ffi::crypto_sign_detached(
                signature.as_mut_ptr(),
                std::ptr::null_mut(),
                inner.as_ptr(),
                inner.len() as u64,
                sender_sk.as_ptr(),
            );
            assert_eq!(rc, 0);
            inner.truncate(m.len() + 32);
            inner.extend_from_slice(&signature);
            let rc = ffi::crypto_box_seal(
                out.as_mut_ptr(),
                inner.as_ptr(),
                inner.len() as u64,
                recipient_x.as_ptr(),
            );
            assert_eq!(rc, 0);
        }
        out
    }

    /// libsession `decrypt_incoming` + `decrypt_incoming_session_id`: `crypto_box_seal_open`,
    /// `crypto_sign_verify_detached(SIG, M || A || Y, A)`, `crypto_sign_ed25519_pk_to_curve25519(A)`.
    /// Returns (message, sender Ed25519 key, sender X25519 key).
    pub fn v1_decrypt(
        recipient_x: &[u8; 32],
        recipient_x_sk: &[u8; 32],
        ciphertext: &[u8],
    ) -> (Vec<u8>, [u8; 32], [u8; 32]) {
        let inner_len = ciphertext.len() - SEAL_OVERHEAD;
        let m_len = inner_len - 96;
        let mut inner = vec![0u8; inner_len];
        let mut sender_x = [0u8; 32];
        // SAFETY: `inner` has room for the opened box (ciphertext − 48); the other buffers are
        // 32/64 bytes as libsodium expects.
        unsafe {
            let rc = ffi::crypto_box_seal_open(
                inner.as_mut_ptr(),
                ciphertext.as_ptr(),
                ciphertext.len() as u64,
                recipient_x.as_ptr(),
                recipient_x_sk.as_ptr(),
            );
            assert_eq!(rc, 0, "box opens");
            let signature: [u8; 64] = inner[m_len + 32..].try_into().expect("64 bytes");
            let sender_ed: [u8; 32] = inner[m_len..m_len + 32].try_into().expect("32 bytes");
            inner.truncate(m_len + 32);
            inner.extend_from_slice(recipient_x);
            let rc = ffi::crypto_sign_verify_detached(
                signature.as_ptr(),
                inner.as_ptr(),
                inner.len() as u64,
                sender_ed.as_ptr(),
            );
            assert_eq!(rc, 0, "signature verifies");
            let rc = ffi::crypto_sign_ed25519_pk_to_curve25519(sender_x.as_mut_ptr(), sender_ed.as_ptr());
            assert_eq!(rc, 0, "sender key converts");
            inner.truncate(m_len);
            (inner, sender_ed, sender_x)
        }
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_v1, bench_keys, bench_primitives, bench_onion, bench_message_hash, bench_mnemonic
}

/// `criterion_main!`, plus a profiling mode: with `SESSION_BENCH_PROFILE=<op>` set, the binary
/// runs only `<op>` about `SESSION_BENCH_ITERS` times (default 2000, in ~2 ms batches, at least
/// 20) and prints the fastest batch's time per call, for `valgrind --tool=callgrind`, `perf record`, or a figure on
/// a loaded machine. Operations: `v1-encrypt`, `v1-decrypt`, `keygen`, `sign`, `verify`, `x25519`
/// (each also with a `-libsodium` twin), `onion-build-xchacha20`, `onion-build-aes-gcm`,
/// `onion-peel-xchacha20`, `onion-peel-aes-gcm`, `message-hash`, `mnemonic-decode-25`.
fn main() {
    if let Ok(op) = std::env::var("SESSION_BENCH_PROFILE") {
        let iters = std::env::var("SESSION_BENCH_ITERS").ok().and_then(|n| n.parse().ok()).unwrap_or(2000);
        profile(&op, iters);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

/// Runs one operation `iters` times (see [`main`]).
fn profile(op: &str, iters: u32) {
    sodium::init();
    let (sender, recipient, message) = (sender(), recipient(), payload());
    let recipient_x = *recipient.x25519_public();
    let (sender_sk, sender_ed) = (sodium::secret_key(&sender), sender.ed25519_public());
    let mut rng = UnwrapErr(SysRng);
    let ciphertext = v1::encrypt_for_recipient(&sender, &recipient_x, &message, &mut rng).expect("valid key");
    let seed = [0x42u8; 32];
    let signature = sender.sign(&message);
    let onion = OnionFixture::new();
    let (onion_x, onion_gcm) = (onion.spec(EncType::XChaCha20), onion.spec(EncType::AesGcm));
    let request_x = build_request(&onion_x, &onion.secrets).expect("valid path");
    let request_gcm = build_request(&onion_gcm, &onion.secrets).expect("valid path");
    let swarm_pubkey = recipient.session_id().to_bytes();
    let phrase = mnemonic::encode(&[7u8; 32]).expect("32 bytes encode").to_text();
    let mut run: Box<dyn FnMut()> = match op {
        "v1-encrypt" => Box::new(|| {
            black_box(
                v1::encrypt_for_recipient(&sender, &recipient_x, &message, &mut rng).expect("valid key"),
            );
        }),
        "v1-encrypt-libsodium" => Box::new(|| {
            black_box(sodium::v1_encrypt(&sender_sk, &sender_ed, &recipient_x, &message));
        }),
        "v1-decrypt" => Box::new(|| {
            black_box(v1::decrypt_incoming(&recipient, &ciphertext).expect("opens"));
        }),
        "v1-decrypt-libsodium" => Box::new(|| {
            black_box(sodium::v1_decrypt(&recipient_x, recipient.x25519_secret(), &ciphertext));
        }),
        "keygen" => Box::new(|| {
            black_box(IdentityKey::from_seed_bytes(black_box(&seed)));
        }),
        "keygen-libsodium" => Box::new(|| {
            black_box(sodium::keygen(black_box(&seed)));
        }),
        "sign" => Box::new(|| {
            black_box(sender.sign(black_box(&message)));
        }),
        "sign-libsodium" => Box::new(|| {
            black_box(sodium::sign(&sender_sk, black_box(&message)));
        }),
        "verify" => Box::new(|| {
            assert!(verify_ed25519(&sender_ed, black_box(&message), &signature));
        }),
        "verify-libsodium" => Box::new(|| {
            assert!(sodium::verify(&sender_ed, black_box(&message), &signature));
        }),
        "x25519" => Box::new(|| {
            black_box(
                primitives::x25519(recipient.x25519_secret(), black_box(sender.x25519_public())).expect("ok"),
            );
        }),
        "x25519-libsodium" => Box::new(|| {
            black_box(sodium::x25519(recipient.x25519_secret(), black_box(sender.x25519_public())));
        }),
        "onion-build-xchacha20" => Box::new(|| {
            black_box(build_request(black_box(&onion_x), &onion.secrets).expect("valid path"));
        }),
        "onion-build-aes-gcm" => Box::new(|| {
            black_box(build_request(black_box(&onion_gcm), &onion.secrets).expect("valid path"));
        }),
        "onion-peel-xchacha20" => Box::new(|| {
            black_box(onion.peel(black_box(&request_x.body)));
        }),
        "onion-peel-aes-gcm" => Box::new(|| {
            black_box(onion.peel(black_box(&request_gcm.body)));
        }),
        "message-hash" => Box::new(|| {
            black_box(MessageHash::compute(
                black_box(&swarm_pubkey),
                Namespace::DEFAULT,
                black_box(&message),
            ));
        }),
        "mnemonic-decode-25" => Box::new(|| {
            black_box(mnemonic::decode(black_box(&phrase)).expect("valid phrase"));
        }),
        other => panic!("unknown SESSION_BENCH_PROFILE operation {other:?}"),
    };
    // Batches of ~2 ms, short enough that some run between the other processes' time slices.
    let start = Instant::now();
    run();
    let once = start.elapsed().max(Duration::from_nanos(1));
    let per_batch = u32::try_from(Duration::from_millis(2).as_nanos() / once.as_nanos()).unwrap_or(1).max(1);
    let batches = (iters / per_batch).max(20);
    let mut fastest = Duration::MAX;
    for _ in 0..batches {
        let start = Instant::now();
        for _ in 0..per_batch {
            run();
        }
        fastest = fastest.min(start.elapsed() / per_batch);
    }
    println!("{op}: fastest of {batches} batches of {per_batch}: {fastest:.2?} per call");
}
