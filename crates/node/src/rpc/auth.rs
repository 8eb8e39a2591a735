//! Request authentication: loading the auth fields (SS `load_pk_signature`, `load_subaccount`)
//! and verifying them (network §3.3, §3.4), including the account's revocation list.

use session_protocol::rpc_sign::{
    SignableRequest, SubaccountAuth, SubaccountFlags, SubaccountToken, owner_verifying_key, verify_request,
    verify_subaccount,
};

use super::RpcError;
use super::params::{self, Params};
use crate::AccountKey;
use crate::context::NodeContext;

/// The authentication fields of a signed request, parsed but not yet verified.
#[derive(Debug, Clone)]
pub(crate) struct Auth {
    /// `pubkey_ed25519` (only for `05` accounts).
    pub pubkey_ed25519: Option<[u8; 32]>,
    /// `signature`.
    pub signature: [u8; 64],
    /// `subaccount` + `subaccount_sig`.
    pub subaccount: Option<SubaccountAuth>,
}

/// The raw auth strings of a request, read (type-checked) in the method's field order.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AuthFields<'a> {
    pub pubkey_ed25519: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub subaccount: Option<&'a str>,
    pub subaccount_sig: Option<&'a str>,
}

impl<'a> AuthFields<'a> {
    /// Reads `pubkey_ed25519`, `signature`, `subaccount`, `subaccount_sig`.
    pub fn read(p: &'a Params) -> Result<Self, RpcError> {
        Ok(Self {
            pubkey_ed25519: params::string(p, "pubkey_ed25519")?,
            signature: params::string(p, "signature")?,
            subaccount: params::string(p, "subaccount")?,
            subaccount_sig: params::string(p, "subaccount_sig")?,
        })
    }

    /// Reads `pubkey_ed25519` and `signature` only (methods that take no subaccount).
    pub fn read_owner_only(p: &'a Params) -> Result<Self, RpcError> {
        Ok(Self {
            pubkey_ed25519: params::string(p, "pubkey_ed25519")?,
            signature: params::string(p, "signature")?,
            subaccount: None,
            subaccount_sig: None,
        })
    }
}

/// Loads the account and the required signature (SS `load_pk_signature`): the pubkey is
/// required and must be valid, then the signature is required, then `pubkey_ed25519` (only for
/// `05` accounts) and the signature encoding are checked.
pub(crate) fn load_signed(
    pubkey: Option<&str>,
    fields: &AuthFields<'_>,
) -> Result<(AccountKey, Auth), RpcError> {
    let account = params::account(params::require("pubkey", pubkey)?)?;
    let signature = params::require("signature", fields.signature)?;
    let pubkey_ed25519 = match fields.pubkey_ed25519 {
        None => None,
        Some(_) if account.prefix() != 0x05 => {
            return Err(RpcError::parse("pubkey_ed25519 is only permitted for 05[...] pubkeys"));
        }
        Some(text) if text.len() == 64 => Some(
            session_protocol::primitives::hex_array(text)
                .ok_or_else(|| RpcError::parse("invalid pubkey_ed25519: value is not hex"))?,
        ),
        Some(_) => {
            return Err(RpcError::parse("Invalid pubkey_ed25519: expected 64 hex char or 32 byte pubkey"));
        }
    };
    let signature = params::signature(signature)
        .ok_or_else(|| RpcError::parse("invalid signature: expected base64 encoded Ed25519 signature"))?;
    let subaccount = load_subaccount(fields)?;
    Ok((account, Auth { pubkey_ed25519, signature, subaccount }))
}

/// Loads `subaccount` / `subaccount_sig` (SS `load_subaccount`); an absent or empty token means
/// no subaccount.
fn load_subaccount(fields: &AuthFields<'_>) -> Result<Option<SubaccountAuth>, RpcError> {
    let Some(token) = fields.subaccount.filter(|t| !t.is_empty()) else { return Ok(None) };
    let sig = fields.subaccount_sig.ok_or_else(|| {
        RpcError::parse("invalid subaccount: subaccount_sig is required when using subaccount")
    })?;
    let token = SubaccountToken::from_text(token).map_err(|_| {
        RpcError::parse("invalid subaccount: expected base64 or hex-encoded subaccount token")
    })?;
    let signature = params::signature(sig).ok_or_else(|| {
        RpcError::parse("invalid subaccount signature: expected base64 encoded Ed25519 signature")
    })?;
    Ok(Some(SubaccountAuth { token, signature }))
}

/// Verifies a request's signature (and subaccount token, and that the token is not revoked
/// unless the request is a retrieve from an unrevocable namespace). Any failure is a 401 with
/// `failure` as its text; a database error while reading the revocation list is a 500.
pub(crate) async fn verify(
    ctx: &NodeContext,
    account: &AccountKey,
    auth: &Auth,
    request: &SignableRequest<'_>,
    failure: &'static str,
) -> Result<(), RpcError> {
    verify_request(
        request,
        account.as_bytes(),
        auth.pubkey_ed25519.as_ref(),
        auth.subaccount.as_ref(),
        &auth.signature,
    )
    .map_err(|_| RpcError::new(401, failure))?;
    check_revocation(ctx, account, auth, request.checks_revocation(), failure).await
}

/// Like [`verify`] but with the subaccount checked for `required` flags instead of the
/// request's own (used by `expire`, which checks Write first and answers a `shorten` without
/// Delete with 400 rather than 401; network §3.4).
pub(crate) async fn verify_with_flags(
    ctx: &NodeContext,
    account: &AccountKey,
    auth: &Auth,
    request: &SignableRequest<'_>,
    required: SubaccountFlags,
    failure: &'static str,
) -> Result<(), RpcError> {
    let unauthorized = || RpcError::new(401, failure);
    let owner =
        owner_verifying_key(account.as_bytes(), auth.pubkey_ed25519.as_ref()).map_err(|_| unauthorized())?;
    let key = match &auth.subaccount {
        None => owner,
        Some(sub) => {
            verify_subaccount(&sub.token, &sub.signature, account.prefix(), &owner, required)
                .map_err(|_| unauthorized())?;
            *sub.token.ed25519_pubkey()
        }
    };
    if !session_protocol::keys::verify_ed25519(&key, &request.message(), &auth.signature) {
        return Err(unauthorized());
    }
    check_revocation(ctx, account, auth, request.checks_revocation(), failure).await
}

async fn check_revocation(
    ctx: &NodeContext,
    account: &AccountKey,
    auth: &Auth,
    checks_revocation: bool,
    failure: &'static str,
) -> Result<(), RpcError> {
    let Some(sub) = &auth.subaccount else { return Ok(()) };
    if !checks_revocation {
        return Ok(());
    }
    match ctx.store.is_revoked(*account, *sub.token.as_bytes()).await {
        Ok(false) => Ok(()),
        Ok(true) => {
            tracing::debug!(account = %account.short(), "subaccount token is revoked");
            Err(RpcError::new(401, failure))
        }
        Err(e) => {
            tracing::warn!(error = %e, "revocation lookup failed");
            Err(RpcError::new(500, "request failed"))
        }
    }
}
