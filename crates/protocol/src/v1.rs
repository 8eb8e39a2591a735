//! Session Protocol v1 one-to-one encryption (crypto §3.1–3.3).
