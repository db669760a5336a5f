//! limit (under construction).
