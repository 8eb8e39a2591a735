//! The client RPC of `POST /storage_rpc/v1` (network §3, §4). Being written (helper N2).
