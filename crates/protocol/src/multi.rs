//! Multi-recipient encryption (crypto §6.2).
