package federation

/*
#include <stdlib.h>
#include "federation.h"

extern void federationGoSyncRead(void *user_data, char *entity_type, char *entity_id, federation_sync_reply_t *reply);
extern void federationGoSyncWrite(void *user_data, char *change_json, size_t change_len, federation_sync_reply_t *reply);
extern void federationGoSyncRelease(void *user_data);
*/
import "C"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/cgo"
	"sync"
	"unsafe"
)

// SyncTarget is the service's store as the subscriber sees it: where the versions live, with
// the data. Calls for one entity never overlap; calls for different entities may run
// concurrently, each on its own goroutine. ctx ends once the subscription has stopped.
//
// An error from either method is a handler error: the event is retried with backoff
// (sync.handler) and then goes to the dead-letter topic, and the entity's partition goes on.
// A panic is reported the same way.
type SyncTarget interface {
	// Stamp returns the stored state of the entity (nil: nothing stored), exactly as the sync
	// gave it (AppliedChange.State, Published.State).
	Stamp(ctx context.Context, entityType, entityID string) (*EntityState, error)
	// Apply stores change.State for change.Event's entity (and does whatever the service does
	// on a change). Return ErrStale when the stored state is no longer change.Previous: the
	// subscriber then reads and decides again, without counting an attempt.
	Apply(ctx context.Context, change *AppliedChange) error
}

// ErrStale is what SyncTarget.Apply returns when the stored state changed since Stamp read it
// (a compare-and-set miss).
var ErrStale = errors.New("federation: the stored state changed since it was read")

// TargetFuncs is a SyncTarget made of two funcs.
type TargetFuncs struct {
	StampFunc func(ctx context.Context, entityType, entityID string) (*EntityState, error)
	ApplyFunc func(ctx context.Context, change *AppliedChange) error
}

// Stamp calls StampFunc.
func (f TargetFuncs) Stamp(ctx context.Context, entityType, entityID string) (*EntityState, error) {
	return f.StampFunc(ctx, entityType, entityID)
}

// Apply calls ApplyFunc.
func (f TargetFuncs) Apply(ctx context.Context, change *AppliedChange) error {
	return f.ApplyFunc(ctx, change)
}

// Subscription consumes the other clusters' changes into a SyncTarget until Stop, the
// cancellation of the context given to Subscribe, or DataSync.Close.
type Subscription struct {
	ds      *DataSync // keeps the sync reachable while the subscription is used
	state   *subState
	unwatch func() bool
}

// subState is the running part, reachable from the C callbacks through its cgo.Handle and from
// the sync's set of subscriptions (never from the DataSync itself, so a forgotten DataSync can
// be finalized).
type subState struct {
	core      *syncCore
	target    SyncTarget
	ctx       context.Context
	cancel    context.CancelFunc
	ptr       *C.federation_sync_subscription_t
	stopOnce  sync.Once
	done      chan struct{}
	released  chan struct{}
	handleVal cgo.Handle
}

//export federationGoSyncRead
func federationGoSyncRead(data unsafe.Pointer, entityType, entityID *C.char, reply *C.federation_sync_reply_t) {
	st := cgo.Handle(uintptr(data)).Value().(*subState)
	t, id := C.GoString(entityType), C.GoString(entityID)
	go st.read(t, id, reply)
}

//export federationGoSyncWrite
func federationGoSyncWrite(data unsafe.Pointer, changeJSON *C.char, changeLen C.size_t, reply *C.federation_sync_reply_t) {
	st := cgo.Handle(uintptr(data)).Value().(*subState)
	text := C.GoBytes(unsafe.Pointer(changeJSON), C.int(changeLen))
	go st.write(text, reply)
}

//export federationGoSyncRelease
func federationGoSyncRelease(data unsafe.Pointer) {
	handle := cgo.Handle(uintptr(data))
	st := handle.Value().(*subState)
	handle.Delete()
	close(st.released)
}

// answer replies to a target operation (which frees reply).
func answer(reply *C.federation_sync_reply_t, status C.federation_sync_reply_status_t, text []byte) {
	var ctext *C.char
	if text != nil {
		ctext = C.CString(string(text))
		defer C.free(unsafe.Pointer(ctext))
	}
	if cerr := C.federation_sync_reply(reply, status, ctext); cerr != nil {
		C.federation_error_free(cerr)
	}
}

// answerError replies with a handler error (ErrStale: a compare-and-set miss).
func answerError(reply *C.federation_sync_reply_t, err error) {
	if errors.Is(err, ErrStale) {
		answer(reply, C.FEDERATION_SYNC_REPLY_STALE, nil)
		return
	}
	answer(reply, C.FEDERATION_SYNC_REPLY_ERROR, []byte(err.Error()))
}

// guarded runs f, turning a panic into an error.
func guarded(what string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s panicked: %v", what, r)
		}
	}()
	return f()
}

func (st *subState) read(entityType, entityID string, reply *C.federation_sync_reply_t) {
	var state *EntityState
	err := guarded("SyncTarget.Stamp", func() (err error) {
		state, err = st.target.Stamp(st.ctx, entityType, entityID)
		return err
	})
	if err != nil {
		answerError(reply, err)
		return
	}
	if state == nil {
		answer(reply, C.FEDERATION_SYNC_REPLY_OK, nil)
		return
	}
	raw, err := state.MarshalJSON()
	if err != nil {
		answerError(reply, err)
		return
	}
	answer(reply, C.FEDERATION_SYNC_REPLY_OK, raw)
}

func (st *subState) write(text []byte, reply *C.federation_sync_reply_t) {
	var change AppliedChange
	if err := json.Unmarshal(text, &change); err != nil {
		answerError(reply, fmt.Errorf("unreadable change from the sync: %w", err))
		return
	}
	err := guarded("SyncTarget.Apply", func() error { return st.target.Apply(st.ctx, &change) })
	if err != nil {
		answerError(reply, err)
		return
	}
	answer(reply, C.FEDERATION_SYNC_REPLY_OK, nil)
}

// Subscribe starts consuming every other cluster's changes into target: in order per entity,
// each read (Stamp), decided (duplicate, causal successor, conflict and its policy) and, when
// there is something to store, written (Apply); the offset is committed only after Apply
// succeeded or the event was dead-lettered. The subscription stops (finishing the events in
// hand) on Stop, when ctx is cancelled, or on Close. The handlers' context carries ctx's
// values but ends only once the subscription has stopped, so a cancelled ctx does not fail an
// event in hand.
func (s *DataSync) Subscribe(ctx context.Context, target SyncTarget) (*Subscription, error) {
	if target == nil {
		return nil, newError(KindInvalidRequest, "sync", "nil SyncTarget")
	}
	if err := ctx.Err(); err != nil {
		return nil, contextError("sync", err)
	}
	st := &subState{core: s.core, target: target, done: make(chan struct{}), released: make(chan struct{})}
	st.ctx, st.cancel = context.WithCancel(context.WithoutCancel(ctx))
	st.handleVal = cgo.NewHandle(st)
	s.core.mu.Lock()
	if s.core.closed {
		s.core.mu.Unlock()
		st.handleVal.Delete()
		st.cancel()
		return nil, closedError("sync")
	}
	callbacks := targetCallbacks()
	cerr := C.federation_sync_subscribe(s.core.ptr, &callbacks, userData(uintptr(st.handleVal)), &st.ptr)
	if cerr == nil {
		s.core.subs[st] = struct{}{}
	}
	s.core.mu.Unlock()
	if cerr != nil {
		st.handleVal.Delete() // release never runs when subscribing failed
		st.cancel()
		return nil, takeError(cerr, "sync")
	}
	return &Subscription{ds: s, state: st, unwatch: context.AfterFunc(ctx, st.stop)}, nil
}

// stop stops the consumers (once), waiting for the events in hand.
func (st *subState) stop() {
	st.stopOnce.Do(func() {
		p := &donePending{done: make(chan *C.federation_error_t, 1)}
		handle := cgo.NewHandle(p)
		if cerr := C.federation_sync_subscription_stop(st.ptr, doneCallback, userData(uintptr(handle))); cerr != nil {
			handle.Delete()
			C.federation_error_free(cerr)
		} else if cerr := <-p.done; cerr != nil {
			C.federation_error_free(cerr)
		}
		C.federation_sync_subscription_free(st.ptr)
		st.ptr = nil
		st.cancel()
		st.core.mu.Lock()
		delete(st.core.subs, st)
		st.core.mu.Unlock()
		close(st.done)
	})
}

// Stop stops the subscription after the events in hand are finished and committed, and
// returns when it has stopped. Later calls return at once. Not from a SyncTarget method: it
// waits for them.
func (sub *Subscription) Stop() {
	sub.unwatch()
	sub.state.stop()
	<-sub.state.done
}

// Done is closed once the subscription has stopped (Stop, its context, or DataSync.Close).
func (sub *Subscription) Done() <-chan struct{} { return sub.state.done }
