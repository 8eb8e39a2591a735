//! Tests of the RPC layer.
