//! The kafkit producer (work in progress).
#![forbid(unsafe_code)]
