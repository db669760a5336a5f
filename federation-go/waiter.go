package federation

/*
#include "federation.h"
*/
import "C"

import (
	"context"
	"runtime"
)

// callHere runs in on the goroutine's own OS thread, which does the call's network I/O itself
// (federation_client_call_blocking): it writes the request, sleeps on the socket and reads the
// response, with no hand-off to or from the library's worker threads. The thread is blocked
// for the whole call, so at most waiterCount() calls run this way at once (see waiterSlots);
// the rest go through the library's runtime (waitQueued).
//
// The read lock is held for the whole call (the C function reads the client handle); Close
// cancels the call through its registered token before it takes the write lock.
func (c *Client) callHere(ctx context.Context, service string, in *encoded) (w waited, err error) {
	cancel := C.federation_cancel_new()
	if cancel == nil {
		return w, newError(KindInternal, service, "out of memory")
	}
	w.cancel = cancel
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return w, closedError(service)
	}
	w.id = c.register(cancel)
	var fired chan struct{}
	stop := func() bool { return true }
	if ctx.Done() != nil {
		fired = make(chan struct{})
		stop = context.AfterFunc(ctx, func() {
			C.federation_cancel_cancel(cancel)
			close(fired)
		})
	}
	var pinner runtime.Pinner
	in.pin(&pinner)
	w.out.err = C.federation_client_call_blocking(c.ptr, in.service(), in.method(), in.path(),
		in.headersPtr(), C.size_t(len(in.headers)), in.bodyPtr(), C.size_t(len(in.body)),
		&in.options, cancel, &w.out.response)
	pinner.Unpin()
	runtime.KeepAlive(in)
	if !stop() {
		<-fired // the caller frees the cancel token: the cancelling function must be done with it
		w.ctxErr = ctx.Err()
	}
	return w, nil
}
