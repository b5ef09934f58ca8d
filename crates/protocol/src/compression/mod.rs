//! Compression codecs (owned by the compression work).
