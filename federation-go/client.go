// Package federation is the Go client of the federation SDK: one call API over logical
// services that live in several clusters, each discovered through its own Consul, with
// balancing, circuit breaking, retries within a budget, failover and caching done by the Rust
// core through its C ABI.
//
// Calls never pin more than a few OS threads while they wait: a small number of calls (2 by
// default, FEDERATION_GO_WAITERS) run on their goroutine's own thread, which does the network
// I/O itself; every other call runs on the core's fixed pool of worker threads and completes
// through a callback, so thousands of goroutines can call at once.
// Cancelling the context (or its deadline passing) cancels the call in the core, abandoning the
// upstream request.
package federation

/*
#include <stdlib.h>
#include "federation.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Format is the text format of a configuration.
type Format int

// Configuration formats.
const (
	YAML Format = iota + 1
	TOML
	JSON
)

// c is the C ABI's value of the format.
func (f Format) c() (C.federation_config_format_t, error) {
	switch f {
	case YAML:
		return C.FEDERATION_CONFIG_YAML, nil
	case TOML:
		return C.FEDERATION_CONFIG_TOML, nil
	case JSON:
		return C.FEDERATION_CONFIG_JSON, nil
	}
	return 0, newError(KindConfig, "", "unknown configuration format; use YAML, TOML or JSON")
}

// Client calls logical services. It is safe for concurrent use by many goroutines. Close it
// when done.
type Client struct {
	mu     sync.RWMutex // guards ptr and closed; held for reading while a call starts
	ptr    *C.federation_client_t
	closed bool
	// closedFlag mirrors closed for lock-free reads; set before Close cancels the calls in
	// flight (see pending.started).
	closedFlag atomic.Bool
}

// New creates a client from configuration text in the given format. Every configuration
// problem is reported at once in an error matching ErrConfig.
func New(config string, format Format) (*Client, error) {
	cformat, err := format.c()
	if err != nil {
		return nil, err
	}
	if strings.IndexByte(config, 0) >= 0 {
		return nil, newError(KindConfig, "", "configuration text contains a NUL byte")
	}
	text := C.CString(config)
	defer C.free(unsafe.Pointer(text))
	var ptr *C.federation_client_t
	if err := C.federation_client_new(text, cformat, &ptr); err != nil {
		return nil, takeError(err, "")
	}
	return newClient(ptr), nil
}

// NewFromFile creates a client from a configuration file; the format comes from the extension
// (.yaml, .yml, .toml, .json).
func NewFromFile(path string) (*Client, error) {
	if strings.IndexByte(path, 0) >= 0 {
		return nil, newError(KindConfig, "", "path contains a NUL byte")
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var ptr *C.federation_client_t
	if err := C.federation_client_new_from_file(cpath, &ptr); err != nil {
		return nil, takeError(err, "")
	}
	return newClient(ptr), nil
}

func newClient(ptr *C.federation_client_t) *Client {
	return closeWhenForgotten(&Client{ptr: ptr})
}

// WorkerThreads is the most OS threads the core's runtime uses (worker threads plus its small
// blocking pool), whatever the number of calls in flight.
func WorkerThreads() int {
	return int(C.federation_runtime_threads())
}

// Get calls GET path on service.
func (c *Client) Get(ctx context.Context, service, path string) (*Response, error) {
	return c.Do(ctx, service, &Request{Method: "GET", Path: path})
}

// Post calls POST path on service with body and a Content-Type header (omitted when "").
// POST is not retried once it may have reached a server unless Request.Idempotent says so.
func (c *Client) Post(ctx context.Context, service, path, contentType string, body []byte) (*Response, error) {
	req := &Request{Method: "POST", Path: path, Body: body}
	if contentType != "" {
		req.Header = map[string][]string{"Content-Type": {contentType}}
	}
	return c.Do(ctx, service, req)
}

// Do sends req to the logical service and waits for the outcome or for ctx. A non-2xx
// status is a Response, not an error. Errors are *Error values matching one sentinel.
func (c *Client) Do(ctx context.Context, service string, req *Request) (*Response, error) {
	if req == nil {
		return nil, newError(KindInvalidRequest, service, "nil request")
	}
	if err := ctx.Err(); err != nil {
		return nil, contextError(service, err)
	}
	in, err := encode(service, req)
	if err != nil {
		return nil, err
	}
	if deadline, ok := ctx.Deadline(); ok {
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return nil, contextError(service, context.DeadlineExceeded)
		}
		ms := uint64(math.Ceil(float64(remaining) / float64(time.Millisecond)))
		if in.options.timeout_ms == 0 || ms < uint64(in.options.timeout_ms) {
			in.options.timeout_ms = C.uint64_t(ms)
		}
	}
	inFlight := callsInFlight.Add(1)
	defer callsInFlight.Add(-1)
	if inFlight <= int64(cap(waiterSlots)) && acquireWaiter() {
		// Few calls in flight: this thread does the call's I/O itself.
		defer releaseWaiter()
		return c.callHere(ctx, service, in)
	}
	return c.callQueued(ctx, service, in)
}

// cgoSlots bounds how many goroutines are inside the C library's call path at once. A goroutine
// in a cgo call holds its OS thread; when calls are slow (a loaded machine), the Go scheduler
// starts new threads for the other goroutines, and Go never ends threads it started. Waiting for
// a slot parks the goroutine instead, so 1000 concurrent callers cost no more threads than a few.
var cgoSlots = make(chan struct{}, max(runtime.GOMAXPROCS(0), 2))

func enterC() { cgoSlots <- struct{}{} }

// waiterSlots bounds how many calls run on their goroutine's own thread (each blocks that OS
// thread until the call completes). Such a call makes no thread hand-off at all, so it is the
// fast path when few calls are in flight; beyond the bound calls run on the core's workers and
// wait in Go, so threads stay bounded.
var waiterSlots = make(chan struct{}, waiterCount())

// callsInFlight counts the process's calls between Do's start and end. A call runs on its own
// thread only while at most cap(waiterSlots) calls are in flight: under load, a blocked thread
// per call costs more (the Go scheduler starts threads to replace them, and they compete with
// the core's workers for CPUs) than the thread hand-offs it saves.
var callsInFlight atomic.Int64

func acquireWaiter() bool {
	select {
	case waiterSlots <- struct{}{}:
		return true
	default:
		return false
	}
}

func releaseWaiter() { <-waiterSlots }
func leaveC()        { <-cgoSlots }

// isClosed reads the closed flag without the lock (a call's tail holds a cgo slot, and must not
// wait behind a Close that waits for calls starting).
func (c *Client) isClosed() bool {
	return c.closedFlag.Load()
}

// Close cancels every call in flight (they return errors matching ErrClosed and ErrCancelled)
// and releases the client. It is idempotent and safe to call concurrently with calls.
func (c *Client) Close() error {
	// Cancel first: a call running on its own thread holds the read lock until it returns.
	already := c.closedFlag.Swap(true)
	cancelCalls(c)
	if already {
		return nil
	}
	runtime.SetFinalizer(c, nil)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	C.federation_client_free(c.ptr)
	c.ptr = nil
	return nil
}

// Metrics is the client's metrics in the Prometheus text exposition format.
func (c *Client) Metrics() (string, error) {
	return c.text(func(ptr *C.federation_client_t, out **C.federation_string_t) *C.federation_error_t {
		return C.federation_client_metrics(ptr, out)
	})
}

// Health is every logical service's health in every cluster.
func (c *Client) Health() (*Health, error) {
	text, err := c.text(func(ptr *C.federation_client_t, out **C.federation_string_t) *C.federation_error_t {
		return C.federation_client_health(ptr, out)
	})
	if err != nil {
		return nil, err
	}
	var h Health
	if jerr := json.Unmarshal([]byte(text), &h); jerr != nil {
		return nil, newError(KindInternal, "", "health is not valid JSON: "+jerr.Error())
	}
	h.JSON = text
	return &h, nil
}

func (c *Client) text(get func(*C.federation_client_t, **C.federation_string_t) *C.federation_error_t) (string, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return "", closedError("")
	}
	var s *C.federation_string_t
	if err := get(c.ptr, &s); err != nil {
		return "", takeError(err, "")
	}
	defer C.federation_string_free(s)
	var n C.size_t
	data := C.federation_string_data(s, &n)
	return C.GoStringN(data, C.int(n)), nil
}

func closedError(service string) *Error {
	e := newError(KindCancelled, service, "the client is closed")
	e.closed = true
	return e
}

// contextError is the error of a call ended by its context: a timeout for a passed deadline,
// a cancellation otherwise; it wraps the context's error.
func contextError(service string, err error) *Error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Kind: KindTimeout, Service: service, Message: "context deadline exceeded", cause: err}
	}
	return &Error{Kind: KindCancelled, Service: service, Message: "context cancelled", cause: err}
}

// waiterCount is the number of calls that may run on their own thread at once (FEDERATION_GO_WAITERS,
// 0-16; default 2).
func waiterCount() int {
	if n, err := strconv.Atoi(os.Getenv("FEDERATION_GO_WAITERS")); err == nil && n >= 0 && n <= 16 {
		return n
	}
	return 2
}
