//! The HTTP(S) server: routes, rate limiting, body limits, TLS. Being written (helper N3a).
