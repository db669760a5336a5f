package federation

/*
#include <stdlib.h>
#include "federation.h"

extern void federationGoSyncCreated(void *user_data, federation_sync_t *sync, federation_error_t *error);
extern void federationGoSyncText(void *user_data, federation_string_t *text, federation_error_t *error);
*/
import "C"

import (
	"context"
	"encoding/json"
	"math"
	"runtime"
	"runtime/cgo"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// DataSync is the cross-cluster data sync of one service process (the core's
// FederatedDataSync): publish changes of entities, subscribe a store to the other clusters'
// changes, read the status of a change. Safe for concurrent use. Close it when done; one that
// becomes unreachable is closed by the garbage collector.
//
// It keeps itself reachable while a Subscription is in use: subscriptions run until Stop,
// the cancellation of their context, or Close.
type DataSync struct {
	core *syncCore
}

type syncCore struct {
	mu     sync.RWMutex // guards ptr, closed and subs; held for reading while a C call starts
	ptr    *C.federation_sync_t
	closed bool
	local  string
	subs   map[*subState]struct{}
}

// Errors of the sync name the entity ("sync user/42") where a call names its service.
func syncLabel(entityType, entityID string) string { return "sync " + entityType + "/" + entityID }

type syncCreated struct {
	ptr *C.federation_sync_t
	err *C.federation_error_t
}

type textOutcome struct {
	text *C.federation_string_t
	err  *C.federation_error_t
}

var (
	syncCreatedCallback = C.federation_sync_callback_t(C.federationGoSyncCreated)
	syncTextCallback    = C.federation_text_callback_t(C.federationGoSyncText)
)

//export federationGoSyncCreated
func federationGoSyncCreated(data unsafe.Pointer, ptr *C.federation_sync_t, err *C.federation_error_t) {
	handle := cgo.Handle(uintptr(data))
	done := handle.Value().(chan syncCreated)
	handle.Delete()
	done <- syncCreated{ptr: ptr, err: err}
}

//export federationGoSyncText
func federationGoSyncText(data unsafe.Pointer, text *C.federation_string_t, err *C.federation_error_t) {
	handle := cgo.Handle(uintptr(data))
	done := handle.Value().(chan textOutcome)
	handle.Delete()
	done <- textOutcome{text: text, err: err}
}

// NewDataSync starts the data sync described by the configuration's `sync` section, publishing
// as localCluster ("" means sync.local_cluster). It creates this cluster's topics, so it waits
// for the brokers (bounded by ctx). Errors match ErrConfig (no sync section, unknown cluster, a
// `callback` policy: use NewDataSyncWithConflicts), ErrTransport (the brokers refused) or the
// context's.
func NewDataSync(ctx context.Context, config string, format Format, localCluster string) (*DataSync, error) {
	return newDataSync(ctx, config, format, localCluster, nil)
}

func newDataSync(ctx context.Context, config string, format Format, localCluster string, conflicts *conflictSet) (*DataSync, error) {
	cformat, err := format.c()
	if err != nil {
		return nil, err
	}
	if strings.IndexByte(config, 0) >= 0 || strings.IndexByte(localCluster, 0) >= 0 {
		return nil, newError(KindConfig, "", "configuration text or local cluster contains a NUL byte")
	}
	if err := ctx.Err(); err != nil {
		return nil, contextError("sync", err)
	}
	text := C.CString(config)
	defer C.free(unsafe.Pointer(text))
	var local *C.char
	if localCluster != "" {
		local = C.CString(localCluster)
		defer C.free(unsafe.Pointer(local))
	}
	done := make(chan syncCreated, 1)
	handle := cgo.NewHandle(done)
	var cancel *C.federation_cancel_t
	if cerr := conflicts.create(text, cformat, local, userData(uintptr(handle)), &cancel); cerr != nil {
		handle.Delete()
		return nil, takeError(cerr, "")
	}
	out, ctxErr := awaitCancellable(ctx, done, cancel)
	if out.err != nil {
		e := takeError(out.err, "")
		if ctxErr != nil {
			return nil, contextError("sync", ctxErr)
		}
		return nil, e
	}
	ds := &DataSync{core: &syncCore{ptr: out.ptr, subs: map[*subState]struct{}{}}}
	if ctxErr != nil {
		C.federation_sync_free(out.ptr)
		return nil, contextError("sync", ctxErr)
	}
	runtime.SetFinalizer(ds, func(ds *DataSync) {
		forgottenCloses.Add(1)
		_ = ds.Close()
	})
	if health, err := ds.Health(); err == nil {
		ds.core.local = health.LocalCluster
	}
	return ds, nil
}

// awaitCancellable waits for a completion, cancelling the operation when ctx ends first (its
// completion then comes promptly), and frees the cancel token.
func awaitCancellable[T any](ctx context.Context, done chan T, cancel *C.federation_cancel_t) (T, error) {
	var out T
	var ctxErr error
	select {
	case out = <-done:
	case <-ctx.Done():
		ctxErr = ctx.Err()
		C.federation_cancel_cancel(cancel)
		out = <-done
	}
	C.federation_cancel_free(cancel)
	return out, ctxErr
}

// LocalCluster is the cluster this process publishes as.
func (s *DataSync) LocalCluster() string { return s.core.local }

type changeJSON struct {
	EntityType string          `json:"entity_type"`
	EntityID   string          `json:"entity_id"`
	Operation  Operation       `json:"operation"`
	Data       map[string]any  `json:"data,omitempty"`
	Base       json.RawMessage `json:"base,omitempty"`
}

func (c *Change) encode() (string, error) {
	label := syncLabel(c.EntityType, c.EntityID)
	out := changeJSON{EntityType: c.EntityType, EntityID: c.EntityID, Operation: c.Operation, Data: c.Data}
	if c.Base != nil {
		base, err := c.Base.MarshalJSON()
		if err != nil {
			return "", newError(KindInvalidRequest, label, "Change.Base: "+err.Error())
		}
		out.Base = base
	}
	text, err := json.Marshal(out)
	if err != nil {
		return "", newError(KindInvalidRequest, label, "the change cannot be encoded as JSON: "+err.Error())
	}
	return string(text), nil
}

// Publish sends change and returns once the broker acknowledged it durably. The deadline is
// ctx's, else sync.publish_timeout. Errors match ErrInvalidRequest (unknown type, missing
// required field, too large), ErrTimeout (no acknowledgement in time; the change may still be
// delivered later, never twice, so publishing it again is safe; a ctx deadline also matches
// context.DeadlineExceeded), ErrCancelled (ctx cancelled; also matches context.Canceled),
// ErrTransport (the broker refused) or ErrClosed.
func (s *DataSync) Publish(ctx context.Context, change Change) (Published, error) {
	label := syncLabel(change.EntityType, change.EntityID)
	if err := ctx.Err(); err != nil {
		return Published{}, contextError(label, err)
	}
	text, err := change.encode()
	if err != nil {
		return Published{}, err
	}
	var timeoutMs uint64
	if deadline, ok := ctx.Deadline(); ok {
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return Published{}, contextError(label, context.DeadlineExceeded)
		}
		timeoutMs = uint64(math.Ceil(float64(remaining) / float64(time.Millisecond)))
	}
	ctext := C.CString(text)
	defer C.free(unsafe.Pointer(ctext))
	done := make(chan textOutcome, 1)
	handle := cgo.NewHandle(done)
	var cancel *C.federation_cancel_t
	s.core.mu.RLock()
	if s.core.closed {
		s.core.mu.RUnlock()
		handle.Delete()
		return Published{}, closedError(label)
	}
	cerr := C.federation_sync_publish(s.core.ptr, ctext, C.uint64_t(timeoutMs), syncTextCallback, userData(uintptr(handle)), &cancel)
	s.core.mu.RUnlock()
	if cerr != nil {
		handle.Delete()
		return Published{}, takeError(cerr, label)
	}
	out, ctxErr := awaitCancellable(ctx, done, cancel)
	if out.err != nil {
		e := takeError(out.err, label)
		if ctxErr != nil || (e.Kind == KindTimeout && ctx.Err() != nil) {
			return Published{}, contextError(label, ctx.Err())
		}
		return Published{}, e
	}
	result := takeString(out.text)
	if ctxErr != nil {
		return Published{}, contextError(label, ctxErr)
	}
	var published Published
	if err := decodeJSON(result, &published); err != nil {
		return Published{}, newError(KindInternal, label, "unreadable publish result: "+err.Error())
	}
	return published, nil
}

// takeString copies and frees a C string.
func takeString(text *C.federation_string_t) string {
	defer C.federation_string_free(text)
	var n C.size_t
	data := C.federation_string_data(text, &n)
	return C.GoStringN(data, C.int(n))
}

func decodeJSON(text string, out any) error {
	return json.Unmarshal([]byte(text), out)
}

// readText runs a synchronous C accessor writing a string, under the read lock.
func (s *DataSync) readText(label string, f func(ptr *C.federation_sync_t, out **C.federation_string_t) *C.federation_error_t) (string, error) {
	s.core.mu.RLock()
	defer s.core.mu.RUnlock()
	if s.core.closed {
		return "", closedError(label)
	}
	var out *C.federation_string_t
	if cerr := f(s.core.ptr, &out); cerr != nil {
		return "", takeError(cerr, label)
	}
	return takeString(out), nil
}

// Status is the sync status of the latest change of the entity published from this cluster
// (or learnt from its acks topic): pending until every other cluster applied it, then
// completed, or failed with the reason. nil when no change of the entity is known.
func (s *DataSync) Status(entityType, entityID string) (*SyncStatus, error) {
	label := syncLabel(entityType, entityID)
	if strings.IndexByte(entityType, 0) >= 0 || strings.IndexByte(entityID, 0) >= 0 {
		return nil, newError(KindInvalidRequest, label, "entity type or id contains a NUL byte")
	}
	ct, cid := C.CString(entityType), C.CString(entityID)
	defer C.free(unsafe.Pointer(ct))
	defer C.free(unsafe.Pointer(cid))
	text, err := s.readText(label, func(ptr *C.federation_sync_t, out **C.federation_string_t) *C.federation_error_t {
		return C.federation_sync_status(ptr, ct, cid, out)
	})
	if err != nil {
		return nil, err
	}
	var status *SyncStatus
	if err := decodeJSON(text, &status); err != nil {
		return nil, newError(KindInternal, label, "unreadable status: "+err.Error())
	}
	return status, nil
}

// Health is the sync's health entry: per other cluster, how much was consumed, the lag and the
// last error; and how many published changes are pending.
func (s *DataSync) Health() (*SyncHealth, error) {
	text, err := s.readText("sync", func(ptr *C.federation_sync_t, out **C.federation_string_t) *C.federation_error_t {
		return C.federation_sync_health(ptr, out)
	})
	if err != nil {
		return nil, err
	}
	var health SyncHealth
	if err := decodeJSON(text, &health); err != nil {
		return nil, newError(KindInternal, "sync", "unreadable health: "+err.Error())
	}
	return &health, nil
}

// MetricsText is the Prometheus text of the sync metrics (federation_sync_*).
func (s *DataSync) MetricsText() (string, error) {
	return s.readText("sync", func(ptr *C.federation_sync_t, out **C.federation_string_t) *C.federation_error_t {
		return C.federation_sync_metrics(ptr, out)
	})
}

// Close stops every subscription (finishing the events in hand) and releases the sync.
// Publishes in flight finish. Idempotent; later calls fail with ErrClosed.
func (s *DataSync) Close() error {
	s.core.mu.Lock()
	if s.core.closed {
		s.core.mu.Unlock()
		return nil
	}
	s.core.closed = true
	subs := s.core.subs
	s.core.subs = nil
	s.core.mu.Unlock()
	for st := range subs {
		st.stop()
	}
	s.core.mu.Lock()
	C.federation_sync_free(s.core.ptr)
	s.core.ptr = nil
	s.core.mu.Unlock()
	runtime.SetFinalizer(s, nil)
	return nil
}
