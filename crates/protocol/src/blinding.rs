//! Community blinding (crypto §5.1–5.3, §5.5): 15/25-blinded ids, key pairs and signatures.
