package federation

/*
#include <stdlib.h>
#include "federation.h"

extern void federationGoRegistered(void *user_data, federation_registration_t *registration, federation_error_t *error);
extern void federationGoDone(void *user_data, federation_error_t *error);
*/
import "C"

import (
	"context"
	"encoding/json"
	"runtime"
	"runtime/cgo"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Registration describes a service instance announcing itself in one cluster's Consul.
type Registration struct {
	// Name is the Consul service name. Required.
	Name string
	// ID is the instance id, unique on the agent; "" means Name.
	ID string
	// Address is where consumers connect (not 0.0.0.0). Required.
	Address string
	// Port is the TCP port (1-65535).
	Port int
	// Tags are the service tags.
	Tags []string
	// Meta is the service metadata.
	Meta map[string]string
	// HTTPCheck, when set, is probed by the agent: the instance starts critical and passes
	// after the first successful probe.
	HTTPCheck *HTTPCheck
	// TTL, when positive, adds a TTL check that the returned *Registered heartbeats every
	// third of the TTL until it is deregistered or closed.
	TTL time.Duration
}

// HTTPCheck is a health check the Consul agent runs against the instance.
type HTTPCheck struct {
	// URL the agent GETs: 2xx passing, 429 warning, anything else critical.
	URL string
	// Interval between probes; 0 means 10s.
	Interval time.Duration
	// Timeout of one probe; 0 means Consul's default (10s).
	Timeout time.Duration
}

// Registered is an instance registered by this process. It owns the heartbeats of its TTL
// check: they run until Deregister or Close. Its methods are safe for concurrent use.
type Registered struct {
	mu        sync.Mutex
	ptr       *C.federation_registration_t
	cluster   string
	serviceID string
}

type registrationJSON struct {
	Name      string            `json:"name"`
	ID        string            `json:"id,omitempty"`
	Address   string            `json:"address"`
	Port      int               `json:"port"`
	Tags      []string          `json:"tags,omitempty"`
	Meta      map[string]string `json:"meta,omitempty"`
	HTTPCheck *httpCheckJSON    `json:"http_check,omitempty"`
	TTLMs     *int64            `json:"ttl_ms,omitempty"`
}

type httpCheckJSON struct {
	URL        string `json:"url"`
	IntervalMs int64  `json:"interval_ms,omitempty"`
	TimeoutMs  int64  `json:"timeout_ms,omitempty"`
}

// millis rounds a positive duration up to whole milliseconds (0 stays 0).
func millis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

func (r *Registration) encode() (string, error) {
	if r.Port < 0 || r.Port > 65535 {
		return "", newError(KindInvalidRequest, r.Name, "registration port must be 1-65535")
	}
	out := registrationJSON{Name: r.Name, ID: r.ID, Address: r.Address, Port: r.Port, Tags: r.Tags, Meta: r.Meta}
	if r.HTTPCheck != nil {
		out.HTTPCheck = &httpCheckJSON{URL: r.HTTPCheck.URL, IntervalMs: millis(r.HTTPCheck.Interval), TimeoutMs: millis(r.HTTPCheck.Timeout)}
	}
	if r.TTL > 0 {
		ttl := millis(r.TTL)
		out.TTLMs = &ttl
	}
	text, err := json.Marshal(out)
	if err != nil {
		return "", newError(KindInvalidRequest, r.Name, "registration cannot be encoded: "+err.Error())
	}
	return string(text), nil
}

type registeredOutcome struct {
	reg *C.federation_registration_t
	err *C.federation_error_t
}

type registeredPending struct{ done chan registeredOutcome }

type donePending struct{ done chan *C.federation_error_t }

var (
	registeredCallback = C.federation_registration_callback_t(C.federationGoRegistered)
	doneCallback       = C.federation_done_callback_t(C.federationGoDone)
)

//export federationGoRegistered
func federationGoRegistered(data unsafe.Pointer, reg *C.federation_registration_t, err *C.federation_error_t) {
	handle := cgo.Handle(uintptr(data))
	p := handle.Value().(*registeredPending)
	handle.Delete()
	p.done <- registeredOutcome{reg: reg, err: err}
}

//export federationGoDone
func federationGoDone(data unsafe.Pointer, err *C.federation_error_t) {
	handle := cgo.Handle(uintptr(data))
	p := handle.Value().(*donePending)
	handle.Delete()
	p.done <- err
}

// Register announces reg in cluster's Consul and, for a TTL check, starts its heartbeats.
// Errors match ErrInvalidRequest (unknown cluster, a cluster with a static instance list,
// invalid registration; nothing is sent) or ErrDiscovery (the agent failed). When ctx ends
// first the error is the context's; the agent may still have registered the instance.
func (c *Client) Register(ctx context.Context, cluster string, reg Registration) (*Registered, error) {
	label := reg.Name
	if err := ctx.Err(); err != nil {
		return nil, contextError(label, err)
	}
	if strings.IndexByte(cluster, 0) >= 0 {
		return nil, newError(KindInvalidRequest, label, "cluster name contains a NUL byte")
	}
	text, err := reg.encode()
	if err != nil {
		return nil, err
	}
	ccluster := C.CString(cluster)
	defer C.free(unsafe.Pointer(ccluster))
	cjson := C.CString(text)
	defer C.free(unsafe.Pointer(cjson))

	p := &registeredPending{done: make(chan registeredOutcome, 1)}
	handle := cgo.NewHandle(p)
	var cancel *C.federation_cancel_t
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		handle.Delete()
		return nil, closedError(label)
	}
	enterC()
	cerr := C.federation_client_register(c.ptr, ccluster, cjson, registeredCallback, userData(uintptr(handle)), &cancel)
	leaveC()
	c.mu.RUnlock()
	if cerr != nil {
		handle.Delete()
		return nil, takeError(cerr, label)
	}

	var out registeredOutcome
	var ctxErr error
	select {
	case out = <-p.done:
	case <-ctx.Done():
		ctxErr = ctx.Err()
		C.federation_cancel_cancel(cancel)
		out = <-p.done
	}
	C.federation_cancel_free(cancel)
	if out.reg != nil {
		if ctxErr != nil {
			C.federation_registration_free(out.reg)
			return nil, contextError(label, ctxErr)
		}
		id := C.GoString(C.federation_registration_service_id(out.reg))
		return deregisterWhenForgotten(&Registered{ptr: out.reg, cluster: cluster, serviceID: id}), nil
	}
	e := takeError(out.err, label)
	if ctxErr != nil {
		return nil, contextError(label, ctxErr)
	}
	return nil, e
}

// Deregister removes instance serviceID (and its checks) from cluster's Consul. An id the
// agent does not know gives an error matching ErrDiscovery.
func (c *Client) Deregister(ctx context.Context, cluster, serviceID string) error {
	if strings.IndexByte(cluster, 0) >= 0 || strings.IndexByte(serviceID, 0) >= 0 {
		return newError(KindInvalidRequest, serviceID, "cluster or service id contains a NUL byte")
	}
	ccluster := C.CString(cluster)
	defer C.free(unsafe.Pointer(ccluster))
	cid := C.CString(serviceID)
	defer C.free(unsafe.Pointer(cid))
	return waitDone(ctx, serviceID, func(ud unsafe.Pointer, cancel **C.federation_cancel_t) (*C.federation_error_t, error) {
		c.mu.RLock()
		defer c.mu.RUnlock()
		if c.closed {
			return nil, closedError(serviceID)
		}
		return C.federation_client_deregister(c.ptr, ccluster, cid, doneCallback, ud, cancel), nil
	})
}

// waitDone starts an operation completing through doneCallback and waits for it or for ctx.
// start returns the C function's error, or a Go error when it did not call it.
func waitDone(ctx context.Context, label string, start func(unsafe.Pointer, **C.federation_cancel_t) (*C.federation_error_t, error)) error {
	if err := ctx.Err(); err != nil {
		return contextError(label, err)
	}
	p := &donePending{done: make(chan *C.federation_error_t, 1)}
	handle := cgo.NewHandle(p)
	var cancel *C.federation_cancel_t
	enterC()
	cerr, goErr := start(userData(uintptr(handle)), &cancel)
	leaveC()
	if goErr != nil {
		handle.Delete()
		return goErr
	}
	if cerr != nil {
		handle.Delete()
		return takeError(cerr, label)
	}
	var out *C.federation_error_t
	var ctxErr error
	select {
	case out = <-p.done:
	case <-ctx.Done():
		ctxErr = ctx.Err()
		C.federation_cancel_cancel(cancel)
		out = <-p.done
	}
	C.federation_cancel_free(cancel)
	if out == nil {
		return nil
	}
	e := takeError(out, label)
	if ctxErr != nil {
		return contextError(label, ctxErr)
	}
	return e
}

// Cluster is the cluster the instance is registered in.
func (r *Registered) Cluster() string { return r.cluster }

// ServiceID is the instance id as Consul knows it.
func (r *Registered) ServiceID() string { return r.serviceID }

// Deregister stops the heartbeats and removes the instance from the agent. Later calls (and
// calls after Close) do nothing. On an error the heartbeats are stopped anyway; retry with
// Client.Deregister(ctx, r.Cluster(), r.ServiceID()).
func (r *Registered) Deregister(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ptr == nil {
		return nil
	}
	ptr := r.ptr
	err := waitDone(ctx, r.serviceID, func(ud unsafe.Pointer, cancel **C.federation_cancel_t) (*C.federation_error_t, error) {
		return C.federation_registration_deregister(ptr, doneCallback, ud, cancel), nil
	})
	runtime.SetFinalizer(r, nil)
	C.federation_registration_free(ptr)
	r.ptr = nil
	return err
}

// Close stops the heartbeats without deregistering (a TTL check then lapses to critical, as
// for a crashed process). Idempotent.
func (r *Registered) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ptr != nil {
		runtime.SetFinalizer(r, nil)
		C.federation_registration_free(r.ptr)
		r.ptr = nil
	}
	return nil
}
