//! Message hash (network §3.2).
