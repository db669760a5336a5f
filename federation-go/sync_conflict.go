package federation

/*
#include <stdlib.h>
#include "federation.h"

extern void federationGoSyncConflict(void *user_data, char *entity_type, char *first_json, char *second_json, federation_sync_reply_t *reply);
extern void federationGoSyncConflictRelease(void *user_data);
*/
import "C"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/cgo"
	"sort"
	"strings"
	"unsafe"
)

// The `callback` conflict policy in Go: a ConflictFunc per entity type decides between two
// versions. Both clusters run the same decision on the same inputs, so it must be
// deterministic. A ConflictFunc that fails (returns an error, panics, or returns the zero
// Resolution) neither crashes the consumer nor stalls the partition: that conflict is decided
// by last writer wins (the newer stamp, which both clusters pick alike) and the library writes
// the failure to standard error.

// ConflictVersion is one version of an entity in a conflict.
type ConflictVersion struct {
	// Stamp is the stamp of the change that produced it.
	Stamp Stamp `json:"stamp"`
	// Data is the record; nil for a delete.
	Data map[string]any `json:"data"`
}

// Resolution is a ConflictFunc's answer: KeepFirst, KeepSecond or Merge(record).
type Resolution struct {
	keep   string
	merged map[string]any
}

var (
	// KeepFirst keeps the first (older-stamped) version.
	KeepFirst = Resolution{keep: "first"}
	// KeepSecond keeps the second (newer-stamped) version.
	KeepSecond = Resolution{keep: "second"}
)

// Merge answers a merged record; it takes the newer stamp.
func Merge(record map[string]any) Resolution { return Resolution{merged: record} }

// ConflictFunc decides a conflict between two versions of one entity, given in stamp order
// (older first) so that both clusters ask the same question. It must be deterministic; for more
// than two concurrent versions of one entity to converge it must also be commutative and
// associative (a merge). It runs on a library thread while that entity's partition waits: keep
// it quick and free of I/O.
type ConflictFunc func(first, second ConflictVersion) (Resolution, error)

type conflictSet struct {
	funcs map[string]ConflictFunc
}

// NewDataSyncWithConflicts is NewDataSync for a configuration with `policy: callback` entity
// types: conflicts holds the ConflictFunc of each of them (by entity type name). Errors as
// NewDataSync; ErrConfig also when a named type does not have `policy: callback` or such a type
// has no func, ErrInvalidRequest for a nil func or an empty name.
func NewDataSyncWithConflicts(ctx context.Context, config string, format Format, localCluster string, conflicts map[string]ConflictFunc) (*DataSync, error) {
	if len(conflicts) == 0 {
		return newDataSync(ctx, config, format, localCluster, nil)
	}
	set := &conflictSet{funcs: make(map[string]ConflictFunc, len(conflicts))}
	for name, f := range conflicts {
		if name == "" || strings.IndexByte(name, 0) >= 0 || f == nil {
			return nil, newError(KindInvalidRequest, "", fmt.Sprintf("conflicts[%q]: a ConflictFunc needs a non-nil func and an entity type name without NUL bytes", name))
		}
		set.funcs[name] = f
	}
	return newDataSync(ctx, config, format, localCluster, set)
}

// create starts creating the C runtime (with the conflict callback when c is not nil).
func (c *conflictSet) create(config *C.char, format C.federation_config_format_t, local *C.char, user unsafe.Pointer, cancel **C.federation_cancel_t) *C.federation_error_t {
	if c == nil {
		return C.federation_sync_new(config, format, local, syncCreatedCallback, user, cancel)
	}
	names := make([]string, 0, len(c.funcs))
	for name := range c.funcs {
		names = append(names, name)
	}
	sort.Strings(names)
	list := C.CString(strings.Join(names, "\x00")) // consecutive NUL-terminated names
	defer C.free(unsafe.Pointer(list))
	handle := cgo.NewHandle(c)
	spec := C.federation_sync_conflict_t{
		entity_types:       list,
		entity_types_count: C.size_t(len(names)),
		decide:             (*[0]byte)(C.federationGoSyncConflict),
		release:            (*[0]byte)(C.federationGoSyncConflictRelease),
	}
	cerr := C.federation_sync_new_with_conflict(config, format, local, &spec, userData(uintptr(handle)), syncCreatedCallback, user, cancel)
	if cerr != nil {
		handle.Delete() // release never runs when the call was refused
	}
	return cerr
}

//export federationGoSyncConflict
func federationGoSyncConflict(data unsafe.Pointer, entityType, firstJSON, secondJSON *C.char, reply *C.federation_sync_reply_t) {
	set := cgo.Handle(uintptr(data)).Value().(*conflictSet)
	// The library needs the answer before this returns: decide here, on its thread.
	text, err := set.decide(C.GoString(entityType), C.GoString(firstJSON), C.GoString(secondJSON))
	if err != nil {
		answer(reply, C.FEDERATION_SYNC_REPLY_ERROR, []byte(err.Error()))
		return
	}
	answer(reply, C.FEDERATION_SYNC_REPLY_OK, text)
}

//export federationGoSyncConflictRelease
func federationGoSyncConflictRelease(data unsafe.Pointer) {
	cgo.Handle(uintptr(data)).Delete()
}

// decide runs the type's ConflictFunc and encodes its answer for the library.
func (c *conflictSet) decide(entityType, firstJSON, secondJSON string) ([]byte, error) {
	f := c.funcs[entityType]
	if f == nil {
		return nil, fmt.Errorf("no ConflictFunc for entity type %q", entityType)
	}
	var first, second ConflictVersion
	if err := json.Unmarshal([]byte(firstJSON), &first); err != nil {
		return nil, fmt.Errorf("unreadable first version: %w", err)
	}
	if err := json.Unmarshal([]byte(secondJSON), &second); err != nil {
		return nil, fmt.Errorf("unreadable second version: %w", err)
	}
	var resolution Resolution
	err := guarded("the ConflictFunc of "+entityType, func() (err error) {
		resolution, err = f(first, second)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resolution.encode()
}

func (r Resolution) encode() ([]byte, error) {
	switch {
	case r.merged != nil:
		return json.Marshal(r.merged)
	case r.keep == "":
		return nil, errors.New("the zero Resolution is no decision: return KeepFirst, KeepSecond or Merge(record)")
	default:
		return []byte(r.keep), nil
	}
}
