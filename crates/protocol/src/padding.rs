//! Content padding and unpadding (crypto §4.1).
