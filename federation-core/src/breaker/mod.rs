//! breaker (under construction).
