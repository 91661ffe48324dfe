//! No tests at all.

/// Nothing to test.
pub fn nothing() {}
