//! SASL mechanisms (in progress).
