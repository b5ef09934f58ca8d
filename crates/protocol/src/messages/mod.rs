//! Generated messages (owned by the codegen work).
#![allow(missing_docs)]
/// placeholder
#[derive(Debug, Clone, Copy, PartialEq, Eq)] pub enum ApiKey { Produce = 0 }
/// placeholder
#[derive(Debug, Clone, Copy, PartialEq, Eq)] pub struct ErrorCode(pub i16);
