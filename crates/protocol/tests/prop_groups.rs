//! Property tests for multi-recipient encryption (crypto §6.2), config encryption and padding
//! (§8.2), ONS, push-notification and xchacha20 decryption (§8.3).

use proptest::collection::vec;
use proptest::prelude::*;
use session_protocol::IdentityKey;
use session_protocol::config_crypto;
use session_protocol::multi::{self, MultiDecryptError};
use session_protocol::ons;

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn multi_round_trip(
        sender_seed in any::<[u8; 32]>(),
        recipient_seeds in vec(any::<[u8; 32]>(), 1..5),
        messages in vec(bytes(100), 5),
        domain in "[ -~]{0,64}",
        nonce in any::<[u8; 24]>(),
        one_for_all in any::<bool>(),
    ) {
        let sender = IdentityKey::from_seed_bytes(&sender_seed);
        let recipients: Vec<IdentityKey> =
            recipient_seeds.iter().map(IdentityKey::from_seed_bytes).collect();
        let publics: Vec<[u8; 32]> = recipients.iter().map(|r| *r.x25519_public()).collect();
        let messages = if one_for_all { &messages[..1] } else { &messages[..recipients.len()] };
        let entries =
            multi::encrypt_for_recipients(&sender, &publics, messages, &domain, &nonce).unwrap();
        prop_assert_eq!(entries.len(), recipients.len());
        for (i, recipient) in recipients.iter().enumerate() {
            let expected = if one_for_all { &messages[0] } else { &messages[i] };
            prop_assert_eq!(entries[i].len(), expected.len() + multi::ENTRY_OVERHEAD);
            let got = multi::decrypt_for_recipient(
                recipient, sender.x25519_public(), &domain, &nonce, &entries,
            );
            // Two identical seeds give identical keys; either copy is "ours" then.
            if recipient_seeds.iter().filter(|s| **s == recipient_seeds[i]).count() == 1 {
                prop_assert_eq!(got.as_ref(), Ok(expected));
            } else {
                prop_assert!(got.is_ok());
            }
        }
        let outsider = IdentityKey::from_seed_bytes(&[0xee; 32]);
        if !recipient_seeds.contains(&[0xee; 32]) {
            prop_assert_eq!(
                multi::decrypt_for_recipient(&outsider, sender.x25519_public(), &domain, &nonce, &entries),
                Err(MultiDecryptError::NoEntryDecrypts)
            );
        }
    }

    #[test]
    fn config_round_trip(
        key_base in any::<[u8; 32]>(),
        domain in "[ -~]{1,24}",
        message in bytes(2000),
        overhead in 0usize..200,
    ) {
        let padded = config_crypto::pad_message(&message, overhead);
        prop_assert_eq!(padded.len(), config_crypto::padded_size(message.len(), overhead));
        prop_assert!(padded.ends_with(&message));
        let ciphertext = config_crypto::encrypt(&key_base, &domain, &padded).unwrap();
        prop_assert_eq!(ciphertext.len(), padded.len() + config_crypto::ENCRYPT_OVERHEAD);
        prop_assert_eq!(config_crypto::decrypt(&key_base, &domain, &ciphertext), Ok(padded));
    }

    #[test]
    fn xchacha20_round_trip(key in any::<[u8; 32]>(), plaintext in bytes(500), nonce in any::<[u8; 24]>()) {
        let sealed = ons::xchacha20_encrypt(&key, &plaintext, &nonce);
        prop_assert_eq!(ons::xchacha20_decrypt(&key, &sealed), Ok(plaintext));
    }
}

proptest! {
    #[test]
    fn padded_size_is_aligned_and_not_smaller(size in 0usize..200_000, overhead in 0usize..1000) {
        let padded = config_crypto::padded_size(size, overhead);
        prop_assert!(padded >= size);
        let total = padded + overhead;
        let chunk = match size + overhead {
            0..5120 => 256,
            5120..20480 => 1024,
            20480..40960 => 2048,
            _ => 5120,
        };
        prop_assert_eq!(total % chunk, 0);
        prop_assert!(total - (size + overhead) < chunk);
    }

    #[test]
    fn padded_size_never_panics(size in any::<usize>(), overhead in any::<usize>()) {
        prop_assert!(config_crypto::padded_size(size, overhead) >= size);
    }

    #[test]
    fn multi_decrypt_never_panics(
        seed in any::<[u8; 32]>(),
        sender in any::<[u8; 32]>(),
        domain in ".{0,80}",
        nonce in any::<[u8; 24]>(),
        entries in vec(bytes(80), 0..4),
    ) {
        let ours = IdentityKey::from_seed_bytes(&seed);
        let _ = multi::decrypt_for_recipient(&ours, &sender, &domain, &nonce, &entries);
    }

    #[test]
    fn config_decrypt_never_panics(key_base in any::<[u8; 32]>(), domain in ".{0,30}", data in bytes(200)) {
        let _ = config_crypto::decrypt(&key_base, &domain, &data);
    }

    #[test]
    fn ons_decrypt_never_panics(
        name in ".{0,40}",
        data in bytes(100),
        nonce in any::<[u8; 24]>(),
        key in any::<[u8; 32]>(),
    ) {
        let _ = ons::decrypt_xchacha20(&name, &data, &nonce);
        let _ = ons::decrypt_legacy_with_key(&key, &data);
    }

    #[test]
    fn xchacha20_and_push_decrypt_never_panic(key in any::<[u8; 32]>(), data in bytes(120)) {
        let _ = ons::xchacha20_decrypt(&key, &data);
        let _ = ons::decrypt_push_notification(&key, &data);
    }
}
