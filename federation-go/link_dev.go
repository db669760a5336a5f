//go:build federation_dev || federation_release || federation_dynamic

package federation

// Linking inside this repository (development): the C library from the Cargo workspace, selected
// by build tags (scripts/ffi-go-test.sh and scripts/examples.sh set GOFLAGS=-tags=federation_dev):
//
//	-tags federation_dev       ../target/debug/libfederation.a   (`cargo build -p federation-ffi`)
//	-tags federation_release   ../target/release/libfederation.a (`cargo build --release -p federation-ffi`)
//	-tags federation_dynamic   libfederation.so found through CGO_LDFLAGS (-L<dir> -Wl,-rpath,<dir>)
//
// Without any of these tags the prebuilt library of the released module is linked
// (link_linux_amd64.go); see README.md.

/*
#cgo CFLAGS: -I${SRCDIR}/../federation-ffi/include
#cgo !federation_release,!federation_dynamic LDFLAGS: ${SRCDIR}/../target/debug/libfederation.a -lz -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
#cgo federation_release,!federation_dynamic LDFLAGS: ${SRCDIR}/../target/release/libfederation.a -lz -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
#cgo federation_dynamic LDFLAGS: -lfederation
*/
import "C"
