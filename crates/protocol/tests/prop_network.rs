//! Property tests for bt-encoding, frames, swarm lookup and subaccount tokens (network §2.3,
//! §3.4, §4.16, §6.2, §6.5, §7.5).

use std::collections::BTreeMap;

use proptest::prelude::*;
use session_protocol::IdentityKey;
use session_protocol::bencode::{
    BtValue, MonitorNotification, QuicMessage, SnOnionRequest, decode, decode_sn_data, encode, signed_dict,
};
use session_protocol::message_hash::{MessageHash, Namespace};
use session_protocol::rpc_sign::{
    MonitorSubscription, NamespaceSelector, SignableRequest, SubaccountAuth, SubaccountFlags,
    SubaccountToken, verify_request, verify_subaccount,
};
use session_protocol::swarm::{SwarmId, swarm_for_space};

fn bt_value() -> impl Strategy<Value = BtValue> {
    let leaf = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(BtValue::Bytes),
        any::<i64>().prop_map(BtValue::Int),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(BtValue::List),
            proptest::collection::btree_map(proptest::collection::vec(any::<u8>(), 0..6), inner, 0..6)
                .prop_map(|m: BTreeMap<Vec<u8>, BtValue>| BtValue::Dict(m)),
        ]
    })
}

proptest! {
    #[test]
    fn bencode_round_trip(value in bt_value()) {
        let encoded = encode(&value);
        prop_assert_eq!(decode(&encoded), Ok(value));
    }

    #[test]
    fn bencode_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
        let _ = signed_dict(&bytes, b"~");
        let _ = QuicMessage::parse_frame(&bytes);
        let _ = SnOnionRequest::decode(&bytes);
        let _ = MonitorNotification::decode(&bytes);
        let _ = decode_sn_data(&bytes);
        let _ = MonitorSubscription::list_from_bt(&bytes);
    }

    #[test]
    fn bencode_decode_never_panics_on_near_valid(value in bt_value(), cut in any::<prop::sample::Index>(),
                                                 flip in any::<u8>()) {
        let mut encoded = encode(&value);
        if !encoded.is_empty() {
            let i = cut.index(encoded.len());
            encoded[i] ^= flip;
            let _ = decode(&encoded);
            let _ = decode(&encoded[..i]);
        }
    }

    #[test]
    fn quic_frame_round_trip(rid in any::<i64>(), endpoint in "[a-z_]{1,20}",
                             body in proptest::collection::vec(any::<u8>(), 0..300), kind in 0u8..3) {
        let message = match kind {
            0 => QuicMessage::Command { rid, endpoint: &endpoint, body: &body },
            1 => QuicMessage::Reply { rid, body: &body },
            _ => QuicMessage::Error { rid, body: &body },
        };
        let frame = message.to_frame();
        prop_assert_eq!(QuicMessage::parse_frame(&frame), Ok(Some((message, frame.len()))));
        for cut in [0, frame.len() / 2, frame.len() - 1] {
            prop_assert_eq!(QuicMessage::parse_frame(&frame[..cut]), Ok(None));
        }
    }

    #[test]
    fn monitor_notification_round_trip(pubkey in any::<[u8; 33]>(), ns in any::<i16>(), t in any::<i64>(),
                                       z in any::<i64>(), data in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64))) {
        let hash = MessageHash::compute(&pubkey, Namespace(ns), b"");
        let n = MonitorNotification { pubkey: &pubkey, hash, namespace: Namespace(ns), timestamp: t, expiry: z,
                                      data: data.as_deref() };
        let encoded = n.encode();
        prop_assert_eq!(MonitorNotification::decode(&encoded), Ok(n));
    }

    #[test]
    fn swarm_lookup_returns_member_and_ignores_order(
        ids in proptest::collection::vec(any::<u64>(), 1..40),
        space in any::<u64>(),
        seed in any::<u64>(),
    ) {
        let ids: Vec<SwarmId> = ids.into_iter().map(SwarmId).collect();
        let found = swarm_for_space(space, &ids).unwrap();
        prop_assert!(ids.contains(&found));

        // Deterministic shuffle from the seed.
        let mut shuffled = ids.clone();
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(swarm_for_space(space, &shuffled), Some(found));

        // It is a nearest id by wrapping distance.
        let dist = |id: u64| id.wrapping_sub(space).min(space.wrapping_sub(id));
        prop_assert!(ids.iter().all(|id| dist(id.0) >= dist(found.0)));
    }
}

proptest! {
    // Key generation and signing dominate; fewer cases keep the shared machine responsive.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn subaccount_token_sign_verify(owner_seed in any::<[u8; 32]>(), sub_seed in any::<[u8; 32]>(),
                                    flags in any::<u8>(), prefix in any::<u8>(), timestamp in any::<u64>()) {
        let owner = IdentityKey::from_seed_bytes(&owner_seed);
        let member = IdentityKey::from_seed_bytes(&sub_seed);
        let token = SubaccountToken::new(prefix, SubaccountFlags(flags), &member.ed25519_public());
        prop_assert_eq!(SubaccountToken::from_bytes(token.as_bytes()), Ok(token));
        let token_sig = token.sign(&owner);
        let owner_key = owner.ed25519_public();

        let ok = verify_subaccount(&token, &token_sig, prefix, &owner_key, SubaccountFlags(flags));
        prop_assert_eq!(ok, Ok(()));

        // A full request on a non-05 account keyed by the owner's Ed25519 key.
        let mut account = [prefix; 33];
        account[1..].copy_from_slice(&owner_key);
        if prefix != 0x05 {
            let request = SignableRequest::DeleteAll { namespace: NamespaceSelector::All, timestamp };
            let sig = member.sign(&request.message());
            let auth = SubaccountAuth { token, signature: token_sig };
            let result = verify_request(&request, &account, None, Some(&auth), &sig);
            prop_assert_eq!(result.is_ok(), SubaccountFlags(flags).contains(SubaccountFlags::DELETE));
        }

        // Tampering with the token breaks the owner's signature.
        let mut bytes = *token.as_bytes();
        bytes[35] ^= 1;
        let tampered = SubaccountToken::from_bytes(&bytes).unwrap();
        prop_assert!(verify_subaccount(&tampered, &token_sig, prefix, &owner_key, SubaccountFlags::NONE).is_err());
    }
}
