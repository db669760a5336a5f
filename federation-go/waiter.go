package federation

/*
#include "glue.h"
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
// the rest go through the library's runtime (callQueued).
//
// The read lock is held for the whole call (the C function reads the client handle); Close
// cancels the call through its registered token before it takes the write lock.
func (c *Client) callHere(ctx context.Context, service string, in *encoded) (*Response, error) {
	cancel := C.federation_cancel_new()
	if cancel == nil {
		return nil, newError(KindInternal, service, "out of memory")
	}
	response, cerr, ctxErr, err := c.callHereWith(ctx, service, in, cancel)
	enterC()
	defer leaveC()
	C.federation_cancel_free(cancel)
	switch {
	case err != nil:
		return nil, err
	case response == nil:
		return nil, c.callError(service, cerr, ctxErr)
	case ctxErr != nil:
		// The response raced the cancellation; the caller has given up on it.
		C.federation_response_free(response)
		return nil, contextError(service, ctxErr)
	}
	return takeResponse(response), nil
}

// callHereWith makes the blocking call with cancel registered, so that Close and ctx can
// cancel it, and returns its outcome and the context's error if ctx ended it.
func (c *Client) callHereWith(ctx context.Context, service string, in *encoded, cancel *C.federation_cancel_t) (
	response *C.federation_response_t, cerr *C.federation_error_t, ctxErr, err error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return nil, nil, nil, closedError(service)
	}
	p := &pending{client: c}
	id := registerCall(p)
	defer forgetCall(id)
	p.started(id, cancel)
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
	cerr = C.federation_go_call_blocking(c.ptr, in.pin(&pinner), cancel, &response)
	pinner.Unpin()
	runtime.KeepAlive(in)
	if !stop() {
		<-fired // the caller frees the cancel token: the cancelling function must be done with it
		ctxErr = ctx.Err()
	}
	return response, cerr, ctxErr, nil
}
