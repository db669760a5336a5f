package federation

/*
#include "federation.h"

extern void federationGoComplete(void *user_data, federation_response_t *response, federation_error_t *error);
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// outcome is what the C callback delivers: exactly one of the two pointers is non-nil, and the
// receiver owns it.
type outcome struct {
	response *C.federation_response_t
	err      *C.federation_error_t
}

// pending is one call waiting for its callback.
type pending struct {
	done chan outcome
}

// completeCallback is the C function pointer handed to federation_client_call.
var completeCallback = C.federation_callback_t(C.federationGoComplete)

// federationGoComplete runs on a library worker thread when a call completes. It must not
// block: it hands the outcome to the waiting goroutine over a buffered channel.
//
//export federationGoComplete
func federationGoComplete(data unsafe.Pointer, response *C.federation_response_t, err *C.federation_error_t) {
	handle := cgo.Handle(uintptr(data))
	p := handle.Value().(*pending)
	handle.Delete()
	p.done <- outcome{response: response, err: err}
}
