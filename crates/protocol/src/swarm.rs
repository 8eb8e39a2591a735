//! Swarm space, pubkey → swarm lookup and new swarm ids (network §6.1, §6.2).
