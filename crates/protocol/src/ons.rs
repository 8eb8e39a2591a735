//! ONS name decryption, push-notification decryption and the generic xchacha20 helpers (crypto §8.3).
