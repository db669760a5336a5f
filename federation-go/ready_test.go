package federation_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	federation "github.com/federation/federation-go"
)

func TestWaitReadyReturnsOnceStaticDiscoveryAnswered(t *testing.T) {
	c := newClient(t, oneClusterConfig([]int{9}, ""))
	if err := c.WaitReady(5 * time.Second); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
}

func TestWaitReadyNamesTheClustersThatDidNotAnswer(t *testing.T) {
	config := `clusters:
  dc:
    consul: { address: "http://127.0.0.1:9" }
services:
  svc:
    names: { dc: svc }
`
	c := newClient(t, config)
	started := time.Now()
	err := c.WaitReady(300 * time.Millisecond)
	if !errors.Is(err, federation.ErrDiscovery) {
		t.Fatalf("want ErrDiscovery, got %v", err)
	}
	if !strings.Contains(err.Error(), "svc in dc") {
		t.Fatalf("the waiting route is not named: %v", err)
	}
	if waited := time.Since(started); waited < 250*time.Millisecond {
		t.Fatalf("returned after %v, before the timeout", waited)
	}
	if err := c.WaitReady(-time.Second); !errors.Is(err, federation.ErrInvalidRequest) {
		t.Fatalf("a negative timeout: want ErrInvalidRequest, got %v", err)
	}
}
