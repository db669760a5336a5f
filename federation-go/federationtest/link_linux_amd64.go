//go:build linux && amd64 && !federation_dev && !federation_release && !federation_dynamic

package federationtest

// Linking the released module: the same prebuilt library as ../link_linux_amd64.go (built
// with the testkit feature, which the sandbox needs).

/*
#cgo CFLAGS: -I${SRCDIR}/../build/include
#cgo LDFLAGS: ${SRCDIR}/../build/linux-x86_64/libfederation.a -lz -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
*/
import "C"
