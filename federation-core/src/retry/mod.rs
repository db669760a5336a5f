//! retry (under construction).
