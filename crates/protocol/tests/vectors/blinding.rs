use crate::harness::Handler;

pub fn handlers() -> Vec<(&'static str, Handler)> {
    vec![]
}
