//go:build linux && amd64 && !federation_dev && !federation_release && !federation_dynamic

package federation

// Linking the released module: the prebuilt static library for linux/amd64 in
// build/linux-x86_64, and the header in build/include. Neither is in the repository: scripts/package.sh
// builds them into the release tree (target/package/go), which is what a release tag publishes
// (see README.md, "Releases"). Inside the repository, build with -tags federation_dev.

/*
#cgo CFLAGS: -I${SRCDIR}/build/include
#cgo LDFLAGS: ${SRCDIR}/build/linux-x86_64/libfederation.a -lz -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
*/
import "C"
