//! Criterion benchmarks of the protocol core.
//!
//! Run: `cargo bench -p session-protocol --bench protocol` (whole suite, under 2 minutes), or
//! add a filter: `cargo bench -p session-protocol --bench protocol -- baseline`.
//! Measurement is kept short ([`config`]) so the suite fits a shared CI-sized machine; figures
//! are for spotting regressions and comparing against the libsodium baseline, not for
//! publication.
//!
//! Layout: one `fn bench_<area>(c: &mut Criterion)` per group, all listed in
//! [`criterion_group!`] at the bottom. To add an area (v1 encrypt/decrypt, onion build/peel,
//! message hash, ...), write its function next to the others, use the shared fixtures
//! ([`sender`], [`recipient`], [`payload`]) so figures stay comparable, and add it to the
//! `targets` list.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use session_protocol::keys::verify_ed25519;
use session_protocol::{IdentityKey, mnemonic, primitives};

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

/// Identity key derivation: Ed25519 seed → key pair + X25519 conversion (crypto §1.1).
fn bench_keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("keys");
    let seed = [0x42u8; 32];
    group.bench_function("IdentityKey::from_seed_bytes", |b| {
        b.iter(|| IdentityKey::from_seed_bytes(black_box(&seed)));
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

/// Baseline: the libsodium steps of a 1:1 message, each once, written from the primitives —
/// what upstream Session does with `crypto_sign_detached` + `crypto_box_seal` (and
/// `crypto_box_seal_open` + `crypto_sign_verify_detached`), to compare the real v1
/// encrypt/decrypt against later.
///
/// Seal side: Ed25519-sign `payload || sender_ed_pk || recipient_x_pk`, then seal
/// `payload || sender_ed_pk || signature` to the recipient. Open side: `seal_open`, then verify
/// the signature. A fixed ephemeral secret stands in for the 32 random bytes `crypto_box_seal`
/// draws (the RNG read is not what is measured; key derivation from it still is).
fn bench_baseline(c: &mut Criterion) {
    let mut group = c.benchmark_group("baseline: the libsodium steps, each once");
    group.throughput(Throughput::Bytes(PAYLOAD_LEN as u64));

    let sender = sender();
    let recipient = recipient();
    let payload = payload();
    let ephemeral = [0x5au8; 32];
    let sender_ed = sender.ed25519_public();
    let recipient_x = *recipient.x25519_public();

    let seal_and_sign = || {
        let mut signed = Vec::with_capacity(PAYLOAD_LEN + 64);
        signed.extend_from_slice(&payload);
        signed.extend_from_slice(&sender_ed);
        signed.extend_from_slice(&recipient_x);
        let signature = sender.sign(&signed);
        signed.truncate(PAYLOAD_LEN + 32);
        signed.extend_from_slice(&signature);
        primitives::seal_with_ephemeral(&signed, &recipient_x, &ephemeral).expect("valid recipient")
    };
    let sealed = seal_and_sign();

    group.bench_function(format!("seal + Ed25519 sign, {PAYLOAD_LEN} B"), |b| {
        b.iter(|| black_box(seal_and_sign()));
    });

    group.bench_function(format!("seal_open + Ed25519 verify, {PAYLOAD_LEN} B"), |b| {
        b.iter(|| {
            let mut opened =
                primitives::seal_open(black_box(&sealed), &recipient_x, recipient.x25519_secret())
                    .expect("sealed to this recipient");
            let (body, signature) = opened.split_at(PAYLOAD_LEN + 32);
            let sender_ed: [u8; 32] = body[PAYLOAD_LEN..].try_into().expect("32 bytes");
            let signature: [u8; 64] = signature.try_into().expect("64 bytes");
            opened.truncate(PAYLOAD_LEN + 32);
            opened.extend_from_slice(&recipient_x);
            assert!(verify_ed25519(&sender_ed, &opened, &signature));
            black_box(opened)
        });
    });
    group.finish();
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

criterion_group! {
    name = benches;
    config = config();
    targets = bench_keys, bench_mnemonic, bench_baseline
}
criterion_main!(benches);
