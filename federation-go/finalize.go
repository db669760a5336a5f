package federation

import (
	"runtime"
	"sync/atomic"
)

// A Client or Registered that becomes unreachable without Close is closed by the garbage
// collector: otherwise a forgotten Close would keep the Rust client (its connection pools,
// discovery watches and timers) or a registration's heartbeat alive for the life of the
// process. Close stays the way to release them at a known time; it removes the finalizer, and
// it is idempotent, so a finalizer running Close after an explicit Close changes nothing.

// forgottenCloses counts the clients and registrations closed by their finalizer (tests read it).
var forgottenCloses atomic.Int64

// closeWhenForgotten arms c's finalizer.
func closeWhenForgotten(c *Client) *Client {
	runtime.SetFinalizer(c, func(c *Client) {
		forgottenCloses.Add(1)
		_ = c.Close()
	})
	return c
}

// deregisterWhenForgotten arms r's finalizer.
func deregisterWhenForgotten(r *Registered) *Registered {
	runtime.SetFinalizer(r, func(r *Registered) {
		forgottenCloses.Add(1)
		_ = r.Close()
	})
	return r
}
