//! The kafkit admin client (work in progress).
#![forbid(unsafe_code)]
