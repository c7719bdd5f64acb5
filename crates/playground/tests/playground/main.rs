//! Integration tests of the playground: the binary run headless (`--exit-when-ready`, the
//! timeout path, kubectl against a running playground, SIGTERM), the library API, and
//! `--discovery`.

mod binary;
mod discovery;
mod kubectl;
mod library;
mod support;
