//go:build federation_dev || federation_release || federation_dynamic

package federationtest

// Linking inside this repository: the same tags and libraries as ../link_dev.go.

/*
#cgo CFLAGS: -I${SRCDIR}/../../federation-ffi/include
#cgo !federation_release,!federation_dynamic LDFLAGS: ${SRCDIR}/../../target/debug/libfederation.a -lz -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
#cgo federation_release,!federation_dynamic LDFLAGS: ${SRCDIR}/../../target/release/libfederation.a -lz -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
#cgo federation_dynamic LDFLAGS: -lfederation
*/
import "C"
