//! cache (under construction).
