//! Errors (under construction).
