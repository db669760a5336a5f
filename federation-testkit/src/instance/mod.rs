//! Service instances (under construction).
