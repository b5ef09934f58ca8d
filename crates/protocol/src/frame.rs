//! Frames (owned by the codegen work).
