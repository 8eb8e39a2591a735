//! Property tests for community blinding (crypto §5), SOGS headers (§5.4) and blinded DMs (§3.4).

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use session_protocol::blinded_dm;
use session_protocol::blinding::{
    self, Blinding, NonceStyle, VersionBlindedKey, blind15_key_pair, blind25_key_pair, blinded_key_pair,
};
use session_protocol::keys::verify_ed25519;
use session_protocol::sogs::{self, SogsKey, SogsRequest};
use session_protocol::{IdPrefix, IdentityKey, SessionId};

fn blinding_strategy() -> impl Strategy<Value = Blinding> {
    prop_oneof![Just(Blinding::Blind15), Just(Blinding::Blind25)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Blinded signatures of every kind verify as plain Ed25519 under kA, and not for another
    /// message.
    #[test]
    fn sign_then_verify(seed in any::<[u8; 32]>(), server_pk in any::<[u8; 32]>(),
                        message in proptest::collection::vec(any::<u8>(), 0..200)) {
        let identity = IdentityKey::from_seed_bytes(&seed);
        let kp15 = blind15_key_pair(&identity, &server_pk).unwrap();
        let kp25 = blind25_key_pair(&identity, &server_pk).unwrap();
        for style in [NonceStyle::Libsession, NonceStyle::Desktop] {
            let sig = blinding::blind15_sign(&identity, &server_pk, &message, style).unwrap();
            prop_assert!(verify_ed25519(kp15.public_key(), &message, &sig));
            let mut other = message.clone();
            other.push(0);
            prop_assert!(!verify_ed25519(kp15.public_key(), &other, &sig));
        }
        let sig25 = blinding::blind25_sign(&identity, &server_pk, &message).unwrap();
        prop_assert!(verify_ed25519(kp25.public_key(), &message, &sig25));
        let version = VersionBlindedKey::from_identity(&identity);
        prop_assert!(verify_ed25519(&version.public_key(), &message, &version.sign(&message)));
    }

    /// Key pairs agree with the ids anyone can compute from the Session ID.
    #[test]
    fn key_pairs_match_session_id(seed in any::<[u8; 32]>(), server_pk in any::<[u8; 32]>()) {
        let identity = IdentityKey::from_seed_bytes(&seed);
        let sid = identity.session_id();
        let kp15 = blind15_key_pair(&identity, &server_pk).unwrap();
        let (id, flipped) = blinding::blind15_id(&sid, &server_pk).unwrap();
        prop_assert!(kp15.id() == id || kp15.id() == flipped);
        prop_assert_eq!(blinding::blind25_id(&sid, &server_pk).unwrap(),
                        blind25_key_pair(&identity, &server_pk).unwrap().id());
    }

    /// SOGS header signatures verify under the key named in X-SOGS-Pubkey.
    #[test]
    fn sogs_headers_verify(seed in any::<[u8; 32]>(), server_pk in any::<[u8; 32]>(),
                           nonce in any::<[u8; 16]>(), timestamp in any::<u64>(),
                           body in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
                           blinded in any::<bool>()) {
        let identity = IdentityKey::from_seed_bytes(&seed);
        let request = SogsRequest { method: "POST", path: "/room/x?y=1", body: body.as_deref() };
        let key = if blinded { SogsKey::Blinded15 } else { SogsKey::Unblinded };
        let auth = sogs::auth_headers(&identity, &server_pk, &nonce, timestamp, &request, key).unwrap();
        let pk: [u8; 32] = hex::decode(&auth.pubkey_header[2..]).unwrap().try_into().unwrap();
        use base64::Engine;
        let sig = base64::engine::general_purpose::STANDARD.decode(&auth.signature_b64).unwrap();
        prop_assert!(verify_ed25519(&pk, &auth.signed_message, &sig));
    }

    /// A blinded DM decrypts for the recipient and for the sender, in both directions.
    #[test]
    fn dm_round_trip(a_seed in any::<[u8; 32]>(), b_seed in any::<[u8; 32]>(),
                     server_pk in any::<[u8; 32]>(), blinding in blinding_strategy(),
                     message in proptest::collection::vec(any::<u8>(), 0..300), rng_seed in any::<u64>()) {
        prop_assume!(a_seed != b_seed);
        let mut rng = StdRng::seed_from_u64(rng_seed);
        let alice = IdentityKey::from_seed_bytes(&a_seed);
        let bob = IdentityKey::from_seed_bytes(&b_seed);
        let a_id = blinded_key_pair(&alice, &server_pk, blinding).unwrap().id();
        let b_id = blinded_key_pair(&bob, &server_pk, blinding).unwrap().id();
        for (from, from_id, to, to_id) in [(&alice, &a_id, &bob, &b_id), (&bob, &b_id, &alice, &a_id)] {
            let ct = blinded_dm::encrypt(from, &server_pk, to_id, &message, &mut rng).unwrap();
            prop_assert_eq!(ct.len(), message.len() + blinded_dm::OVERHEAD);
            for reader in [to, from] {
                let (got, sender) = blinded_dm::decrypt(reader, &server_pk, from_id, to_id, &ct).unwrap();
                prop_assert_eq!(&got, &message);
                prop_assert_eq!(sender, from.session_id());
            }
        }
    }

}

proptest! {
    /// Decryption of arbitrary bytes under arbitrary ids returns an error, never panics.
    #[test]
    fn decrypt_never_panics(seed in any::<[u8; 32]>(), server_pk in any::<[u8; 32]>(),
                            sender_key in any::<[u8; 32]>(), recipient_key in any::<[u8; 32]>(),
                            prefixes in (0usize..4, 0usize..4),
                            ciphertext in proptest::collection::vec(any::<u8>(), 0..160)) {
        let prefix = |p: usize| PREFIXES[p % PREFIXES.len()];
        let identity = IdentityKey::from_seed_bytes(&seed);
        let sender = SessionId::new(prefix(prefixes.0), sender_key);
        let recipient = SessionId::new(prefix(prefixes.1), recipient_key);
        prop_assert!(blinded_dm::decrypt(&identity, &server_pk, &sender, &recipient, &ciphertext).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// A well-formed header addressed to us with garbage after it, and arbitrary keys given to
    /// the blinding functions: errors (or ids), never panics.
    #[test]
    fn garbage_to_real_recipient_never_panics(seed in any::<[u8; 32]>(), server_pk in any::<[u8; 32]>(),
                                              sender_key in any::<[u8; 32]>(), blinding in blinding_strategy(),
                                              body in proptest::collection::vec(any::<u8>(), 0..160)) {
        let identity = IdentityKey::from_seed_bytes(&seed);
        let mut ciphertext = vec![0u8];
        ciphertext.extend_from_slice(&body);
        let real = blinded_key_pair(&identity, &server_pk, blinding).unwrap().id();
        let sender = SessionId::new(blinding.prefix(), sender_key);
        prop_assert!(blinded_dm::decrypt(&identity, &server_pk, &sender, &real, &ciphertext).is_err());
        prop_assert!(blinded_dm::decrypt(&identity, &server_pk, &real, &sender, &ciphertext).is_err());
        let standard = SessionId::new(IdPrefix::Standard, sender_key);
        let _ = blinding::blind15_id_from_ed25519(&sender_key, &server_pk);
        let _ = blinding::blind25_id_from_ed25519(&sender_key, &server_pk);
        let _ = blinding::blind15_id(&standard, &server_pk);
        let _ = blinding::blind25_id(&standard, &server_pk);
    }
}

const PREFIXES: [IdPrefix; 4] =
    [IdPrefix::Blinded15, IdPrefix::Blinded25, IdPrefix::Standard, IdPrefix::Unblinded];
