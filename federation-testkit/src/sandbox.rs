//! Sandbox (under construction).
