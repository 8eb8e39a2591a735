//! Community DMs between blinded ids (crypto §3.4).
