//! `POST /onion_req/v2` (network §7.4). Being written (helper N3b).
