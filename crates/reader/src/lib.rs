//! The kafkit consumer (work in progress).
#![forbid(unsafe_code)]
