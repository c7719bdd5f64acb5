//! Integration tests of the playground: the binary run headless (`--exit-when-ready`, the
//! timeout path, kubectl against a running playground, SIGTERM) and the library API.

mod binary;
mod kubectl;
mod library;
mod support;
