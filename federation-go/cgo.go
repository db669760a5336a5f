package federation

/*
#include <stdint.h>
#include "federation.h"

// A cgo.Handle travels through the C ABI as the callback's user data.
static inline void *federation_go_user_data(uintptr_t handle) { return (void *)handle; }
*/
import "C"

import "unsafe"

// userData encodes a cgo.Handle value as the C user-data pointer (the pointer is never
// dereferenced; it only carries the integer back to goComplete).
func userData(handle uintptr) unsafe.Pointer {
	return C.federation_go_user_data(C.uintptr_t(handle))
}
