package federation

// #include "federation.h"
import "C"

import "time"

// WaitReady waits, at most timeout, until the registry of every cluster has answered
// successfully once for every service it serves: the core's one readiness wait
// (FederatedServiceClient::wait_ready), as Python's wait_ready and the CLI use it. A fresh
// client routes as soon as it is built, but its first calls fail with ErrNoHealthyInstance
// ("discovery has not answered yet") until then.
//
// The error matches ErrDiscovery and names each "service in cluster" still waiting, with its
// last registry error. WaitReady blocks its goroutine's thread; a Close meanwhile waits for it.
func (c *Client) WaitReady(timeout time.Duration) error {
	if timeout < 0 {
		return newError(KindInvalidRequest, "", "WaitReady: timeout must not be negative, got "+timeout.String())
	}
	ms := uint64(timeout.Milliseconds())
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return closedError("")
	}
	if err := C.federation_client_wait_ready(c.ptr, C.uint64_t(ms)); err != nil {
		return takeError(err, "")
	}
	return nil
}
