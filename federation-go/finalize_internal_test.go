package federation

import (
	"runtime"
	"testing"
	"time"
)

// TestFinalizerClosesAForgottenClient: a client dropped without Close is closed by its
// finalizer (the Rust client and its watches are freed), not leaked for the life of the process.
func TestFinalizerClosesAForgottenClient(t *testing.T) {
	config := `clusters:
  a:
    static:
      svc-a: [{ id: i0, address: 127.0.0.1, port: 9 }]
services:
  svc:
    names: { a: svc-a }
`
	before := forgottenCloses.Load()
	func() {
		c, err := New(config, YAML)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Metrics(); err != nil {
			t.Fatal(err)
		}
		// c is dropped here without Close.
	}()
	deadline := time.Now().Add(10 * time.Second)
	for forgottenCloses.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("the finalizer of an unreachable client did not run Close within 10 s")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
