//! Signed strings of storage RPC methods, monitor signatures and subaccount tokens (network §3.3, §3.4, §4.16).
