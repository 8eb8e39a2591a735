//! Onion requests (network §7): combined payload, hop encryption, building, peeling, responses, v4 bodies.
