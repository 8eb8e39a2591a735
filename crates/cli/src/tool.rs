//! `session tool …`: inspection and interoperability commands over the protocol crate.

use clap::Subcommand;
use rand::Rng;
use session_protocol::{AccountSeed, IdentityKey, mnemonic};

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
