//! SOGS request authentication headers (crypto §5.4).
