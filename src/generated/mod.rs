//! Code generated from `openapi/queues.json` by `tests/codegen/generator.rs`.
//! Never edit `models.rs` by hand: change the spec (or the generator) and run
//! `UPDATE_CODEGEN=1 cargo test --test codegen`. The drift test fails otherwise.

#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub(crate) mod models;
