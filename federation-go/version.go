package federation

/*
#include "federation.h"
*/
import "C"

// Version is the version of the federation library linked into this program ("0.1.0"): the
// workspace version of the Rust crates, read from the C library (federation_version), so it is
// the same as `federation --version` and Python's federation.__version__ and cannot drift from
// the code that runs.
func Version() string {
	return C.GoString(C.federation_version())
}
