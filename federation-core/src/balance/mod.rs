//! balance (under construction).
