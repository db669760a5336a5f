package federation

// Linking: by default the static library from the Cargo workspace's debug build
// (`cargo build -p federation-ffi`). Build tags select others:
//
//	-tags federation_release   target/release/libfederation.a (`cargo build --release -p federation-ffi`)
//	-tags federation_dynamic   libfederation.so found through CGO_LDFLAGS (-L<dir> -Wl,-rpath,<dir>)
//
// See README.md.

/*
#cgo CFLAGS: -I${SRCDIR}/../federation-ffi/include
#cgo !federation_release,!federation_dynamic LDFLAGS: ${SRCDIR}/../target/debug/libfederation.a -lz -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
#cgo federation_release,!federation_dynamic LDFLAGS: ${SRCDIR}/../target/release/libfederation.a -lz -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
#cgo federation_dynamic LDFLAGS: -lfederation
*/
import "C"
