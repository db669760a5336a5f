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
	"runtime/cgo"
	"unsafe"
)

// LocalDecision is what ApplyLocal did.
type LocalDecision struct {
	// Effect is "applied", "merged", "superseded" or "duplicate".
	Effect Effect `json:"effect"`
	// State is what was written (nil: nothing).
	State *EntityState `json:"state"`
	// Conflict says whether a concurrent change was already stored.
	Conflict bool `json:"conflict"`
}

// targetCallbacks are the C callbacks that run a SyncTarget (see sync_subscribe.go).
func targetCallbacks() C.federation_sync_target_t {
	return C.federation_sync_target_t{
		read:    (*[0]byte)(C.federationGoSyncRead),
		write:   (*[0]byte)(C.federationGoSyncWrite),
		release: (*[0]byte)(C.federationGoSyncRelease),
	}
}

// ApplyLocal records a change this process published in its own store target, through the
// same read, decide and compare-and-set write (Stamp, Apply) the subscriber uses, so a change
// from another cluster that target received between the Publish and this call is kept
// (resolved by the type's policy) instead of being overwritten, as storing published.State
// directly would. Errors match ErrInvalidRequest (published did not come from Publish),
// ErrTarget (target failed; the message has its error), ErrCancelled or ErrTimeout (ctx), or
// ErrClosed.
func (s *DataSync) ApplyLocal(ctx context.Context, target SyncTarget, published Published) (LocalDecision, error) {
	label := syncLabel(published.Event.EntityType, published.Event.EntityID)
	if target == nil || len(published.eventRaw) == 0 {
		return LocalDecision{}, newError(KindInvalidRequest, label, "ApplyLocal needs a SyncTarget and a Published returned by Publish")
	}
	if err := ctx.Err(); err != nil {
		return LocalDecision{}, contextError(label, err)
	}
	st := &subState{target: target, ctx: ctx, released: make(chan struct{})}
	st.handleVal = cgo.NewHandle(st)
	event := C.CString(string(published.eventRaw))
	defer C.free(unsafe.Pointer(event))
	done := make(chan textOutcome, 1)
	handle := cgo.NewHandle(done)
	callbacks := targetCallbacks()
	var cancel *C.federation_cancel_t
	s.core.mu.RLock()
	if s.core.closed {
		s.core.mu.RUnlock()
		handle.Delete()
		st.handleVal.Delete()
		return LocalDecision{}, closedError(label)
	}
	cerr := C.federation_sync_apply_local(s.core.ptr, &callbacks, userData(uintptr(st.handleVal)), event,
		syncTextCallback, userData(uintptr(handle)), &cancel)
	s.core.mu.RUnlock()
	if cerr != nil {
		handle.Delete()
		st.handleVal.Delete() // release never runs when the call was refused
		return LocalDecision{}, takeError(cerr, label)
	}
	out, ctxErr := awaitCancellable(ctx, done, cancel)
	if out.err != nil {
		e := takeError(out.err, label)
		if ctxErr != nil {
			return LocalDecision{}, contextError(label, ctxErr)
		}
		return LocalDecision{}, e
	}
	var decision LocalDecision
	if err := decodeJSON(takeString(out.text), &decision); err != nil {
		return LocalDecision{}, newError(KindInternal, label, "unreadable decision: "+err.Error())
	}
	return decision, nil
}
