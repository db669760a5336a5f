package federation_test

import (
	"os"
	"regexp"
	"testing"

	federation "github.com/federation/federation-go"
)

// The Go module reports the workspace version of the library it links (Cargo.toml's
// [workspace.package] version), not a number of its own.
func TestVersionIsTheWorkspaceVersion(t *testing.T) {
	manifest, err := os.ReadFile("../Cargo.toml")
	if err != nil {
		t.Fatalf("read the workspace manifest: %v", err)
	}
	found := regexp.MustCompile(`(?m)^\[workspace\.package\]\s*\nversion = "([^"]+)"`).FindSubmatch(manifest)
	if found == nil {
		t.Fatal("no version in [workspace.package] of ../Cargo.toml")
	}
	if got, want := federation.Version(), string(found[1]); got != want {
		t.Fatalf("Version() = %q, want the workspace version %q", got, want)
	}
}
