package federationtest

/*
#include <stdlib.h>
#include "federation.h"
*/
import "C"

import (
	"encoding/json"
	"errors"
	"sync"
	"unsafe"
)

// World is a running conformance-scenario topology (any clusters, Consul doubles and
// instances), the same world the Rust conformance runner builds. Close it when done.
type World struct {
	mu  sync.Mutex
	ptr *C.federation_world_t
}

// StartWorld starts the topology given as JSON: a scenario's `topology` block
// ({"clusters": [...]}, see docs/conformance.md).
func StartWorld(topologyJSON []byte) (*World, error) {
	ct := C.CString(string(topologyJSON))
	defer C.free(unsafe.Pointer(ct))
	var ptr *C.federation_world_t
	if err := check(C.federation_world_start(ct, &ptr)); err != nil {
		return nil, err
	}
	return &World{ptr: ptr}, nil
}

// Control runs one World command (a JSON object with "op", see federation_world_control in
// federation.h) and returns its JSON answer.
func (w *World) Control(command any) (json.RawMessage, error) {
	text, err := json.Marshal(command)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ptr == nil {
		return nil, errors.New("federationtest: world is closed")
	}
	cc := C.CString(string(text))
	defer C.free(unsafe.Pointer(cc))
	var out *C.federation_string_t
	if err := check(C.federation_world_control(w.ptr, cc, &out)); err != nil {
		return nil, err
	}
	defer C.federation_string_free(out)
	return json.RawMessage(C.GoString(C.federation_string_data(out, nil))), nil
}

// Close stops every server of the world. Idempotent.
func (w *World) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ptr != nil {
		C.federation_world_free(w.ptr)
		w.ptr = nil
	}
}
