//! Recovery phrase (crypto §2): 13/25-word encode and decode with the checksum word.
