//! Small pieces that the service node, the registry and the client share, so that each is
//! written once: [`secret_file`] (a 32-byte secret kept in a 0600 file, made on first use),
//! [`config_file`] (reading a TOML configuration file with errors that name the file) and
//! [`service`] (the start-up of a long-running binary: logging, TLS provider, runtime, exit
//! code).

pub mod config_file;
pub mod secret_file;
pub mod service;
