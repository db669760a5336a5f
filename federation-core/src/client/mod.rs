//! client (under construction).
