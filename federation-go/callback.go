package federation

/*
#include "federation.h"
*/
import "C"

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

// waited is a started call's outcome and bookkeeping once it completed.
type waited struct {
	id     uint64
	cancel *C.federation_cancel_t // nil when the call did not start
	out    outcome
	ctxErr error // the context's error when the context ended the wait
}
