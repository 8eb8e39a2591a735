//! Compiles the Session protobufs in `proto/` (crypto §4.2) with protox (pure Rust, no `protoc`)
//! and generates prost code into `OUT_DIR`; `src/proto.rs` includes it.

const PROTO_DIR: &str = "proto";
const PROTO_FILES: [&str; 2] = ["SessionProtos.proto", "WebSocketResources.proto"];

/// Messages that carry key material or message text: their `Debug` (and that of their nested
/// types, which prost skips too) is written by hand in `src/proto.rs` so secrets never reach logs.
const REDACTED_DEBUG: [&str; 5] = [
    ".SessionProtos.AttachmentPointer",
    ".SessionProtos.DataMessage",
    ".SessionProtos.MessageRequestResponse",
    ".SessionProtos.KeyPair",
    ".SessionProtos.GroupUpdatePromoteMessage",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_DIR}");
    for file in PROTO_FILES {
        println!("cargo:rerun-if-changed={PROTO_DIR}/{file}");
    }
    let descriptors = protox::compile(PROTO_FILES, [PROTO_DIR])?;
    prost_build::Config::new().skip_debug(REDACTED_DEBUG).compile_fds(descriptors)?;
    Ok(())
}
