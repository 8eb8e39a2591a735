//! The 1:1 message pipeline (crypto §4.3) and legacy config wrapping (§4.4).
