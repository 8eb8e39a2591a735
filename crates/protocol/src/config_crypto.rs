//! Config-message encryption and padding (crypto §8.2).
