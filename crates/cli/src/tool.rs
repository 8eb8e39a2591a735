//! `session tool …`: inspection and interoperability commands over the protocol crate.

use clap::Subcommand;
use rand::Rng;
use session_protocol::message_hash::{MessageHash, Namespace};
use session_protocol::{AccountSeed, IdPrefix, IdentityKey, SessionId, blinding, mnemonic, v1};

use crate::output::Report;

/// The `session tool` commands.
#[derive(Debug, Subcommand)]
pub enum ToolCommand {
    /// Derive an account's keys from a seed (a fresh random 16-byte seed when none is given).
    Keygen {
        /// 16- or 32-byte account seed in hex (16 bytes are zero-padded).
        #[arg(long)]
        seed: Option<String>,
    },
    /// Encode bytes as a recovery phrase, or decode a phrase.
    #[command(subcommand)]
    Mnemonic(MnemonicCommand),
    /// Session Protocol v1: encrypt exactly the given bytes for a recipient (no padding, no
    /// protobuf).
    Encrypt {
        /// The sender's 16- or 32-byte account seed in hex.
        #[arg(long)]
        seed: String,
        /// The recipient's Session ID (05…).
        #[arg(long)]
        to: String,
        /// The message as text (UTF-8).
        #[arg(long, conflicts_with = "message_hex", required_unless_present = "message_hex")]
        message: Option<String>,
        /// The message as hex bytes.
        #[arg(long)]
        message_hex: Option<String>,
    },
    /// Session Protocol v1: decrypt a ciphertext addressed to us and verify the sender.
    Decrypt {
        /// Our 16- or 32-byte account seed in hex.
        #[arg(long)]
        seed: String,
        /// The ciphertext in hex.
        #[arg(long)]
        ciphertext_hex: String,
    },
    /// The 15- and 25-blinded IDs of an account on a community server.
    Blind {
        /// The account's 16- or 32-byte seed in hex.
        #[arg(long)]
        seed: String,
        /// The community server's 32-byte public key in hex.
        #[arg(long)]
        server_pubkey: String,
    },
    /// The storage hash of a message, as nodes compute it.
    Hash {
        /// The account's Session ID (66 hex characters, any prefix).
        #[arg(long)]
        pubkey: String,
        /// The namespace (default 0).
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        namespace: i16,
        /// The stored data, in hex.
        #[arg(long)]
        data_hex: String,
    },
}

/// `session tool mnemonic …`.
#[derive(Debug, Subcommand)]
pub enum MnemonicCommand {
    /// Encode 16 or 32 bytes (hex) as a 13- or 25-word phrase.
    Encode {
        /// The bytes, in hex.
        hex: String,
    },
    /// Decode a phrase (quote it as one argument) into bytes.
    Decode {
        /// The words, separated by spaces.
        words: String,
    },
}

/// A command failed; the text is shown to the person.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("--{what} is not valid hex")]
    Hex { what: &'static str },
    #[error("invalid seed: {0}")]
    Seed(#[from] session_protocol::KeyError),
    #[error("invalid recovery phrase: {0}")]
    Mnemonic(#[from] mnemonic::MnemonicError),
    #[error("invalid Session ID: {0}")]
    SessionId(#[from] session_protocol::IdError),
    #[error("--server-pubkey must be 32 bytes of hex")]
    ServerKey,
    #[error("cannot encrypt: {0}")]
    Encrypt(#[from] v1::EncryptError),
    #[error("cannot decrypt: {0}")]
    Decrypt(#[from] v1::DecryptError),
    #[error("cannot blind: {0}")]
    Blinding(#[from] blinding::BlindingError),
}

/// Runs one tool command.
pub fn run(command: ToolCommand) -> Result<Report, ToolError> {
    match command {
        ToolCommand::Keygen { seed } => keygen(seed.as_deref()),
        ToolCommand::Mnemonic(MnemonicCommand::Encode { hex }) => {
            let bytes = decode_hex(&hex, "hex")?;
            let phrase = mnemonic::encode(&bytes)?;
            Ok(Report::default().field("words", phrase.to_text().as_str()))
        }
        ToolCommand::Mnemonic(MnemonicCommand::Decode { words }) => {
            let bytes = mnemonic::decode(&words)?;
            Ok(Report::default().field("hex", hex::encode(&bytes)))
        }
        ToolCommand::Encrypt { seed, to, message, message_hex } => {
            let sender = IdentityKey::from_seed(&parse_seed(&seed)?);
            let recipient = SessionId::parse_with_prefix(&to, IdPrefix::Standard)?;
            let message = match (message, message_hex) {
                (_, Some(hex)) => decode_hex(&hex, "message-hex")?,
                (Some(text), None) => text.into_bytes(),
                (None, None) => Vec::new(),
            };
            let ciphertext =
                v1::encrypt_for_recipient(&sender, &recipient.to_bytes(), &message, &mut rand::rng())?;
            Ok(Report::default().field("ciphertext_hex", hex::encode(ciphertext)))
        }
        ToolCommand::Decrypt { seed, ciphertext_hex } => {
            let ours = IdentityKey::from_seed(&parse_seed(&seed)?);
            let ciphertext = decode_hex(&ciphertext_hex, "ciphertext-hex")?;
            let decrypted = v1::decrypt_incoming(&ours, &ciphertext)?;
            let mut report = Report::default()
                .field("sender", decrypted.sender.to_hex())
                .field("message_hex", hex::encode(&decrypted.message));
            if let Ok(text) = std::str::from_utf8(&decrypted.message) {
                report = report.field("message_text", text);
            }
            Ok(report)
        }
        ToolCommand::Blind { seed, server_pubkey } => {
            let key = IdentityKey::from_seed(&parse_seed(&seed)?);
            let server: [u8; 32] =
                decode_hex(&server_pubkey, "server-pubkey")?.try_into().map_err(|_| ToolError::ServerKey)?;
            Ok(Report::default()
                .field("session_id", key.session_id().to_hex())
                .field("blinded15_id", blinding::blind15_key_pair(&key, &server)?.id().to_hex())
                .field("blinded25_id", blinding::blind25_key_pair(&key, &server)?.id().to_hex()))
        }
        ToolCommand::Hash { pubkey, namespace, data_hex } => {
            let id: SessionId = pubkey.parse()?;
            let data = decode_hex(&data_hex, "data-hex")?;
            let hash = MessageHash::compute(&id.to_bytes(), Namespace(namespace), &data);
            Ok(Report::default().field("hash", hash.as_str()))
        }
    }
}

fn keygen(seed: Option<&str>) -> Result<Report, ToolError> {
    let seed = match seed {
        Some(text) => parse_seed(text)?,
        None => {
            let mut bytes = [0u8; 16];
            rand::rng().fill_bytes(&mut bytes);
            AccountSeed::from_slice(&bytes)?
        }
    };
    let key = IdentityKey::from_seed(&seed);
    let phrase = mnemonic::account_phrase(&seed);
    Ok(Report::default()
        .field("seed", hex::encode(seed.phrase_bytes()))
        .field("recovery_phrase", phrase.to_text().as_str())
        .field("ed25519_pubkey", hex::encode(key.ed25519_public()))
        .field("x25519_pubkey", hex::encode(key.x25519_public()))
        .field("session_id", key.session_id().to_hex()))
}

/// `--seed`: 16 or 32 bytes of hex.
pub fn parse_seed(text: &str) -> Result<AccountSeed, ToolError> {
    Ok(AccountSeed::from_slice(&decode_hex(text, "seed")?)?)
}

fn decode_hex(text: &str, what: &'static str) -> Result<Vec<u8>, ToolError> {
    hex::decode(text.trim()).map_err(|_| ToolError::Hex { what })
}
