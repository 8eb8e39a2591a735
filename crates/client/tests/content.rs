//! Message kinds through the full pipeline between two generated accounts, the `Content` fields
//! upstream expects, and hostile input.

use prost::Message as _;
use session_client::content::{
    DisappearingMode, Incoming, IncomingContent, IncomingError, MessageKind, Profile, TextMessage,
    TypingAction, Unsupported, decode_incoming, encode_outgoing, from_content, to_content,
};
use session_protocol::envelope::{self, DecodeError};
use session_protocol::keys::{AccountSeed, IdentityKey};
use session_protocol::proto::{
    CallMessage, Content, DataMessage, ReceiptMessage, TypingMessage, UnsendRequest, call_message, content,
    data_message, receipt_message,
};

fn account(n: u8) -> IdentityKey {
    IdentityKey::from_seed(&AccountSeed::from_bytes([n; 32]))
}

fn all_kinds(alice: &IdentityKey, bob: &IdentityKey) -> Vec<MessageKind> {
    let profile = Profile { display_name: Some("Alice".into()), updated_s: Some(1_700_000_000) };
    vec![
        MessageKind::Text(TextMessage {
            body: "hello Bob".into(),
            profile: Some(profile.clone()),
            sync_target: None,
            disappearing: DisappearingMode::Off,
        }),
        MessageKind::Text(TextMessage {
            body: "synced copy, disappearing".into(),
            profile: None,
            sync_target: Some(bob.session_id()),
            disappearing: DisappearingMode::AfterSend { seconds: 86_400 },
        }),
        MessageKind::Text(TextMessage {
            body: "read and gone".into(),
            profile: Some(Profile { display_name: Some("A".into()), updated_s: None }),
            sync_target: None,
            disappearing: DisappearingMode::AfterRead { seconds: 300 },
        }),
        MessageKind::ReadReceipt { timestamps: vec![1_700_000_000_001, 1_700_000_000_002] },
        MessageKind::Typing(TypingAction::Started),
        MessageKind::Typing(TypingAction::Stopped),
        MessageKind::Unsend { timestamp: 1_700_000_000_003, author: alice.session_id() },
        MessageKind::RequestResponse { approved: true, profile: Some(profile) },
        MessageKind::RequestResponse { approved: true, profile: None },
        MessageKind::DisappearingSettings {
            mode: DisappearingMode::AfterRead { seconds: 43_200 },
            sync_target: None,
        },
        MessageKind::DisappearingSettings {
            mode: DisappearingMode::Off,
            sync_target: Some(bob.session_id()),
        },
    ]
}

#[test]
fn every_kind_round_trips_between_two_accounts() {
    let (alice, bob) = (account(1), account(2));
    let mut rng = rand::rng();
    for (i, kind) in all_kinds(&alice, &bob).into_iter().enumerate() {
        let sent_ms = 1_700_000_100_000 + i as u64;
        let bytes = encode_outgoing(&alice, &bob.session_id(), &kind, sent_ms, &mut rng).unwrap();
        let incoming = decode_incoming(&bob, &bytes).unwrap();
        assert_eq!(
            incoming,
            Incoming { sender: alice.session_id(), sent_ms, content: IncomingContent::Kind(kind.clone()) },
            "kind {i}"
        );
    }
}

#[test]
fn note_to_self_and_sync_copies_go_to_our_own_id() {
    let alice = account(1);
    let kind = MessageKind::Text(TextMessage {
        body: "note".into(),
        profile: None,
        sync_target: None,
        disappearing: DisappearingMode::Off,
    });
    let bytes = encode_outgoing(&alice, &alice.session_id(), &kind, 5, &mut rand::rng()).unwrap();
    let incoming = decode_incoming(&alice, &bytes).unwrap();
    assert_eq!(incoming.sender, alice.session_id());
    assert_eq!(incoming.content, IncomingContent::Kind(kind));
}

#[test]
fn content_fields_as_upstream_sends_them() {
    let (alice, bob) = (account(1), account(2));
    let sent = 1_700_000_000_123;

    // Visible message: body, timestamp, profile, syncTarget; expiration on Content; sigTimestamp.
    let kind = MessageKind::Text(TextMessage {
        body: "hi".into(),
        profile: Some(Profile { display_name: Some("Alice".into()), updated_s: Some(77) }),
        sync_target: Some(bob.session_id()),
        disappearing: DisappearingMode::AfterSend { seconds: 3600 },
    });
    let c = to_content(&kind, sent);
    assert_eq!(c.sig_timestamp, Some(sent));
    assert_eq!(c.expiration_type, Some(content::ExpirationType::DeleteAfterSend as i32));
    assert_eq!(c.expiration_type, Some(2));
    assert_eq!(c.expiration_timer, Some(3600));
    let data = c.data_message.as_ref().unwrap();
    assert_eq!(data.body.as_deref(), Some("hi"));
    assert_eq!(data.timestamp, Some(sent));
    assert_eq!(data.flags, None);
    assert_eq!(data.sync_target.as_deref(), Some(bob.session_id().to_hex().as_str()));
    let profile = data.profile.as_ref().unwrap();
    assert_eq!((profile.display_name.as_deref(), profile.last_update_seconds), (Some("Alice"), Some(77)));
    // Wire tags: Content.dataMessage = 1 (0x0a), DataMessage.body = 1 (0x0a), syncTarget = 105
    // (varint tag 105 << 3 | 2 = 0xca 0x06), profile = 101 (0xaa 0x06).
    let bytes = c.encode_to_vec();
    assert_eq!(bytes[0], 0x0a);
    let data_bytes = data.encode_to_vec();
    assert_eq!(&data_bytes[..4], &[0x0a, 2, b'h', b'i']);
    assert!(data_bytes.windows(2).any(|w| w == [0xca, 0x06]));
    assert!(data_bytes.windows(2).any(|w| w == [0xaa, 0x06]));

    // Off: UNKNOWN / 0, as desktop's ExpirableMessage sets them.
    let off = to_content(
        &MessageKind::Text(TextMessage {
            body: "x".into(),
            profile: None,
            sync_target: None,
            disappearing: DisappearingMode::Off,
        }),
        sent,
    );
    assert_eq!((off.expiration_type, off.expiration_timer), (Some(0), Some(0)));
    assert_eq!(off.data_message.unwrap().profile, None);

    // Read receipt: ReceiptMessage{type READ = 1, timestamp[]}; not disappearing.
    let c = to_content(&MessageKind::ReadReceipt { timestamps: vec![10, 20] }, sent);
    assert_eq!(c.receipt_message, Some(ReceiptMessage { r#type: 1, timestamp: vec![10, 20] }));
    assert_eq!((c.expiration_type, c.expiration_timer, c.sig_timestamp), (None, None, Some(sent)));

    // Typing: action STARTED = 0 / STOPPED = 1, timestamp = send time; Content field 6.
    let c = to_content(&MessageKind::Typing(TypingAction::Stopped), sent);
    assert_eq!(c.typing_message, Some(TypingMessage { timestamp: sent, action: 1 }));
    assert_eq!(c.encode_to_vec()[0], 6 << 3 | 2);
    assert_eq!(
        to_content(&MessageKind::Typing(TypingAction::Started), sent).typing_message.unwrap().action,
        0
    );

    // Unsend: timestamp of the target + author hex; Content field 9.
    let c = to_content(&MessageKind::Unsend { timestamp: 55, author: alice.session_id() }, sent);
    assert_eq!(c.unsend_request, Some(UnsendRequest { timestamp: 55, author: alice.session_id().to_hex() }));
    assert_eq!(c.encode_to_vec()[0], 9 << 3 | 2);

    // Message request response: isApproved + profile; never disappearing; Content field 10.
    let c = to_content(
        &MessageKind::RequestResponse {
            approved: true,
            profile: Some(Profile { display_name: Some("A".into()), updated_s: None }),
        },
        sent,
    );
    let response = c.message_request_response.as_ref().unwrap();
    assert!(response.is_approved);
    assert_eq!(response.profile.as_ref().unwrap().display_name.as_deref(), Some("A"));
    assert_eq!((c.expiration_type, c.expiration_timer), (None, None));
    assert_eq!(c.encode_to_vec()[0], 10 << 3 | 2);

    // Disappearing settings: DataMessage.flags = EXPIRATION_TIMER_UPDATE (2), no body; the setting
    // in Content fields 12/13.
    let c = to_content(
        &MessageKind::DisappearingSettings {
            mode: DisappearingMode::AfterRead { seconds: 60 },
            sync_target: None,
        },
        sent,
    );
    let data = c.data_message.as_ref().unwrap();
    assert_eq!(data.flags, Some(data_message::Flags::ExpirationTimerUpdate as u32));
    assert_eq!(data.flags, Some(2));
    assert_eq!(data.body, None);
    assert_eq!((c.expiration_type, c.expiration_timer), (Some(1), Some(60)));
}

#[test]
fn upstream_shaped_content_decodes() {
    // As desktop builds an ExpirationTimerUpdate: no DataMessage.timestamp, type and timer on
    // Content.
    let c = Content {
        data_message: Some(DataMessage { flags: Some(2), ..DataMessage::default() }),
        expiration_type: Some(content::ExpirationType::DeleteAfterSend as i32),
        expiration_timer: Some(300),
        sig_timestamp: Some(9),
        ..Content::default()
    };
    assert_eq!(
        from_content(&c).unwrap(),
        IncomingContent::Kind(MessageKind::DisappearingSettings {
            mode: DisappearingMode::AfterSend { seconds: 300 },
            sync_target: None
        })
    );
    // An older client's text message without expiration fields: off.
    let c = Content {
        data_message: Some(DataMessage {
            body: Some("old".into()),
            timestamp: Some(4),
            ..DataMessage::default()
        }),
        ..Content::default()
    };
    match from_content(&c).unwrap() {
        IncomingContent::Kind(MessageKind::Text(text)) => {
            assert_eq!((text.body.as_str(), text.disappearing), ("old", DisappearingMode::Off));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unsupported_content_is_typed_not_an_error() {
    let cases = [
        (Content::default(), Unsupported::Empty),
        (
            Content {
                call_message: Some(CallMessage {
                    r#type: call_message::Type::Offer as i32,
                    uuid: "u".into(),
                    ..Default::default()
                }),
                ..Content::default()
            },
            Unsupported::Call,
        ),
        (
            Content {
                receipt_message: Some(ReceiptMessage {
                    r#type: receipt_message::Type::Delivery as i32,
                    timestamp: vec![1],
                }),
                ..Content::default()
            },
            Unsupported::DeliveryReceipt,
        ),
        (
            Content {
                receipt_message: Some(ReceiptMessage { r#type: 7, timestamp: vec![] }),
                ..Content::default()
            },
            Unsupported::UnknownEnumValue,
        ),
        (
            Content { typing_message: Some(TypingMessage { timestamp: 1, action: 9 }), ..Content::default() },
            Unsupported::UnknownEnumValue,
        ),
        (
            Content {
                data_message: Some(DataMessage {
                    reaction: Some(data_message::Reaction {
                        id: 1,
                        author: account(1).session_id().to_hex(),
                        emoji: Some("👍".into()),
                        action: 0,
                    }),
                    ..DataMessage::default()
                }),
                ..Content::default()
            },
            Unsupported::Reaction,
        ),
        (
            Content { data_message: Some(DataMessage::default()), ..Content::default() },
            Unsupported::EmptyDataMessage,
        ),
    ];
    for (c, expected) in cases {
        assert_eq!(from_content(&c).unwrap(), IncomingContent::Unsupported(expected));
    }

    // Through the whole pipeline too.
    let (alice, bob) = (account(1), account(2));
    let bytes =
        envelope::encode_for_1o1(&alice, &bob.session_id(), &Content::default(), 3, None, &mut rand::rng())
            .unwrap();
    let incoming = decode_incoming(&bob, &bytes).unwrap();
    assert_eq!(incoming.content, IncomingContent::Unsupported(Unsupported::Empty));
    assert_eq!(incoming.sent_ms, 3, "falls back to the envelope timestamp");
}

#[test]
fn invalid_fields_of_known_kinds_are_errors() {
    let bad_author = Content {
        unsend_request: Some(UnsendRequest { timestamp: 5, author: "05zz".into() }),
        ..Content::default()
    };
    assert!(from_content(&bad_author).is_err());
    let zero = Content {
        unsend_request: Some(UnsendRequest { timestamp: 0, author: account(1).session_id().to_hex() }),
        ..Content::default()
    };
    assert!(from_content(&zero).is_err());
    let bad_sync = Content {
        data_message: Some(DataMessage {
            body: Some("x".into()),
            sync_target: Some("not an id".into()),
            ..DataMessage::default()
        }),
        ..Content::default()
    };
    assert!(from_content(&bad_sync).is_err());

    let (alice, bob) = (account(1), account(2));
    let bytes =
        envelope::encode_for_1o1(&alice, &bob.session_id(), &bad_author, 3, None, &mut rand::rng()).unwrap();
    assert!(matches!(decode_incoming(&bob, &bytes), Err(IncomingError::Content(_))));
}

#[test]
fn a_message_for_someone_else_fails_to_decrypt() {
    let (alice, bob, carol) = (account(1), account(2), account(3));
    let kind = MessageKind::Typing(TypingAction::Started);
    let bytes = encode_outgoing(&alice, &bob.session_id(), &kind, 1, &mut rand::rng()).unwrap();
    assert!(matches!(decode_incoming(&carol, &bytes), Err(IncomingError::Decode(DecodeError::Decrypt(_)))));
}

#[test]
fn garbage_and_truncated_inputs_are_errors() {
    let (alice, bob) = (account(1), account(2));
    let kind = MessageKind::Text(TextMessage {
        body: "a message long enough to truncate at many places".into(),
        profile: Some(Profile { display_name: Some("Alice".into()), updated_s: None }),
        sync_target: None,
        disappearing: DisappearingMode::AfterSend { seconds: 10 },
    });
    let bytes = encode_outgoing(&alice, &bob.session_id(), &kind, 1, &mut rand::rng()).unwrap();
    for len in 0..bytes.len() {
        assert!(decode_incoming(&bob, &bytes[..len]).is_err(), "truncated to {len} bytes");
    }
    // Every single-byte corruption is rejected or, where protobuf framing tolerates it, still
    // yields the authenticated message; it never panics.
    for i in 0..bytes.len() {
        let mut corrupted = bytes.clone();
        corrupted[i] ^= 0x41;
        if let Ok(incoming) = decode_incoming(&bob, &corrupted) {
            assert_eq!(incoming.sender, alice.session_id());
        }
    }
    let mut rng_state = 0x1234_5678_u64;
    for len in [0usize, 1, 2, 16, 100, 1000] {
        let garbage: Vec<u8> = (0..len)
            .map(|_| {
                rng_state = rng_state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (rng_state >> 56) as u8
            })
            .collect();
        assert!(decode_incoming(&bob, &garbage).is_err());
    }
    // The recipient must be a 05 Session ID.
    let blinded = session_protocol::id::SessionId::new(session_protocol::id::IdPrefix::Blinded15, [1; 32]);
    assert!(encode_outgoing(&alice, &blinded, &kind, 1, &mut rand::rng()).is_err());
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use session_protocol::id::{IdPrefix, SessionId};

    fn standard_id() -> impl Strategy<Value = SessionId> {
        any::<[u8; 32]>().prop_map(|key| SessionId::new(IdPrefix::Standard, key))
    }

    fn mode() -> impl Strategy<Value = DisappearingMode> {
        prop_oneof![
            Just(DisappearingMode::Off),
            (1u32..).prop_map(|seconds| DisappearingMode::AfterSend { seconds }),
            (1u32..).prop_map(|seconds| DisappearingMode::AfterRead { seconds }),
        ]
    }

    fn profile() -> impl Strategy<Value = Option<Profile>> {
        proptest::option::of(
            (proptest::option::of(".{0,40}"), proptest::option::of(any::<u64>()))
                .prop_map(|(display_name, updated_s)| Profile { display_name, updated_s }),
        )
    }

    fn kind() -> impl Strategy<Value = MessageKind> {
        prop_oneof![
            (".{1,200}", profile(), proptest::option::of(standard_id()), mode()).prop_map(
                |(body, profile, sync_target, disappearing)| {
                    MessageKind::Text(TextMessage { body, profile, sync_target, disappearing })
                }
            ),
            proptest::collection::vec(any::<u64>(), 0..20)
                .prop_map(|timestamps| MessageKind::ReadReceipt { timestamps }),
            prop_oneof![Just(TypingAction::Started), Just(TypingAction::Stopped)]
                .prop_map(MessageKind::Typing),
            (1u64.., standard_id()).prop_map(|(timestamp, author)| MessageKind::Unsend { timestamp, author }),
            (any::<bool>(), profile())
                .prop_map(|(approved, profile)| MessageKind::RequestResponse { approved, profile }),
            (mode(), proptest::option::of(standard_id()))
                .prop_map(|(mode, sync_target)| MessageKind::DisappearingSettings { mode, sync_target }),
        ]
    }

    proptest! {
        #[test]
        fn content_round_trips(kind in kind(), sent_ms in any::<u64>()) {
            let content = to_content(&kind, sent_ms);
            let reparsed = Content::decode(content.encode_to_vec().as_slice()).unwrap();
            prop_assert_eq!(from_content(&reparsed).unwrap(), IncomingContent::Kind(kind));
        }

        #[test]
        fn arbitrary_content_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(content) = Content::decode(bytes.as_slice()) {
                let _ = from_content(&content);
            }
        }

        #[test]
        fn arbitrary_message_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
            prop_assert!(decode_incoming(&account(2), &bytes).is_err());
        }
    }
}
