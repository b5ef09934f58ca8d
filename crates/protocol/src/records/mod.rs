//! Record batches (owned by the records work).
