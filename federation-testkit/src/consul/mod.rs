//! Consul double (under construction).
