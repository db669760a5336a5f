package federation

/*
#include "glue.h"
*/
import "C"

import (
	"context"
	"os"
	"runtime"
	"sync"
	"unsafe"
)

// How completed calls are delivered and freed (see glue.c): the dispatcher goroutine takes
// completed calls in batches and sends each to its goroutine, which copies the outcome out of
// C memory and hands the call back through releaseCall; the dispatcher frees the handed-back
// calls in its next cgo call.

var (
	queueOnce sync.Once
	queueErr  error
)

// startQueue starts the dispatcher goroutine on first use.
func startQueue() error {
	queueOnce.Do(func() {
		fd := C.federation_go_queue_init()
		if fd < 0 {
			queueErr = newError(KindInternal, "", "cannot create the completion eventfd or the call executor")
			return
		}
		go dispatch(os.NewFile(uintptr(fd), "federation-completions"))
	})
	return queueErr
}

// Calls handed back but not yet freed. The dispatcher frees them with its next batch; a
// goroutine that finds releaseBatch of them (no completions for a while) frees them itself, so
// at most that many small responses stay allocated after the last completion.
var (
	releaseMu   sync.Mutex
	releaseList []*C.federation_go_call_t
)

const (
	releaseBatch = 64
	// A response with a body this large is freed at once, not kept for a batch.
	releaseLargeBody = 64 << 10
)

// releaseCall hands back a call whose outcome Go has copied (or given up on).
func releaseCall(call *C.federation_go_call_t) {
	if call.response != nil && call.view.body_len >= releaseLargeBody {
		freeCalls([]*C.federation_go_call_t{call})
		return
	}
	releaseMu.Lock()
	releaseList = append(releaseList, call)
	var batch []*C.federation_go_call_t
	if len(releaseList) >= releaseBatch {
		batch, releaseList = releaseList, make([]*C.federation_go_call_t, 0, releaseBatch)
	}
	releaseMu.Unlock()
	if batch != nil {
		freeCalls(batch)
	}
}

func freeCalls(calls []*C.federation_go_call_t) {
	enterC()
	defer leaveC()
	releaseAndTake(calls, false) // nothing is taken: the result says nothing
}

// releaseAndTake frees calls and, with take, polls the calls that were woken, moves completed
// calls to C.federation_go_taken and returns how many, and whether it polled any.
func releaseAndTake(calls []*C.federation_go_call_t, take bool) (int, bool) {
	var pinner runtime.Pinner
	defer pinner.Unpin()
	var at C.uintptr_t
	if len(calls) > 0 {
		pinner.Pin(unsafe.SliceData(calls))
		at = C.uintptr_t(uintptr(unsafe.Pointer(unsafe.SliceData(calls))))
	}
	var takeFlag, polled C.int
	if take {
		takeFlag = 1
	}
	taken := int(C.federation_go_release_and_take(at, C.size_t(len(calls)), takeFlag, &polled))
	return taken, polled > 0
}

// dispatch hands completed calls to the goroutines waiting for them, forever.
func dispatch(wake *os.File) {
	var counter [8]byte
	spare := make([]*C.federation_go_call_t, 0, releaseBatch)
	for {
		releaseMu.Lock()
		release := releaseList
		releaseList = spare[:0]
		releaseMu.Unlock()
		n, polled := releaseAndTake(release, true)
		spare = release
		if n == 0 && !polled {
			// Blocks in the network poller until a worker pushes onto an empty list.
			if _, err := wake.Read(counter[:]); err != nil {
				panic("federation: completion eventfd: " + err.Error())
			}
			continue
		}
		for _, call := range C.federation_go_taken[:n] {
			if p := takeCall(uint64(call.id)); p != nil {
				p.done <- call
			} else {
				releaseCall(call) // cannot happen: every queued call is registered until delivered
			}
		}
	}
}

// callQueued runs in as a call whose goroutine waits on a channel fed by the dispatcher.
func (c *Client) callQueued(ctx context.Context, service string, in *encoded) (*Response, error) {
	if err := startQueue(); err != nil {
		return nil, err
	}
	p := &pending{client: c, done: make(chan *C.federation_go_call_t, 1)}
	id := registerCall(p)
	call, err := c.start(service, in, id)
	if err != nil || call.inline_done != 0 {
		forgetCall(id)
		if err != nil {
			return nil, err
		}
		return c.finishQueued(service, call, nil)
	}
	p.started(id, call.cancel)
	var ctxErr error
	select {
	case call = <-p.done:
	case <-ctx.Done():
		ctxErr = ctx.Err()
		C.federation_cancel_cancel(call.cancel)
		call = <-p.done // completes promptly once cancelled
	}
	return c.finishQueued(service, call, ctxErr)
}

// start begins the call in the core, completing through the queue under id.
func (c *Client) start(service string, in *encoded, id uint64) (*C.federation_go_call_t, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return nil, closedError(service)
	}
	enterC()
	defer leaveC()
	var pinner runtime.Pinner
	defer pinner.Unpin()
	var call *C.federation_go_call_t
	cerr := C.federation_go_start(c.ptr, in.pin(&pinner), C.uint64_t(id), &call)
	runtime.KeepAlive(in)
	if cerr != nil {
		return nil, takeError(cerr, service)
	}
	if call == nil {
		return nil, newError(KindInternal, service, "out of memory")
	}
	return call, nil
}

// finishQueued copies a completed call's outcome into Go and hands the call back.
func (c *Client) finishQueued(service string, call *C.federation_go_call_t, ctxErr error) (*Response, error) {
	if call.response != nil {
		var resp *Response
		if ctxErr == nil {
			resp = responseFromView(&call.view, call.response)
		}
		releaseCall(call)
		if ctxErr != nil {
			// The response raced the cancellation; the caller has given up on it.
			return nil, contextError(service, ctxErr)
		}
		return resp, nil
	}
	cerr := call.error
	call.error = nil
	releaseCall(call)
	enterC()
	defer leaveC()
	return nil, c.callError(service, cerr, ctxErr)
}

// callError is the error of a call that completed with cerr (which it frees), or ended by its
// context. The caller holds a cgo slot.
func (c *Client) callError(service string, cerr *C.federation_error_t, ctxErr error) error {
	e := takeError(cerr, service)
	switch {
	case ctxErr != nil:
		return contextError(service, ctxErr)
	case e.Kind == KindCancelled && c.isClosed():
		e.closed = true
	}
	return e
}
