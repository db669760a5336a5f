//go:build !(linux && (amd64 || arm64)) && !federation_dev && !federation_release && !federation_dynamic

package federation

// No prebuilt library for this GOOS/GOARCH: stop the build with a message that says so (the
// undefined name below is the message) instead of a missing-header error from cgo. Build the
// library for the platform (scripts/package.sh --target <rust target triple>) and link it with
// -tags federation_dynamic, or work in the repository with -tags federation_dev.
var _ = federation_has_no_prebuilt_library_for_this_GOOS_GOARCH_see_README_Releases
