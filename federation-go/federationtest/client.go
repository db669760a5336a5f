package federationtest

import (
	"context"
	"testing"
	"time"

	federation "github.com/federation/federation-go"
)

// StartWithClient starts a sandbox and a client of it for a test, both closed by tb.Cleanup,
// and waits until a call to service succeeds (a new client has no instances until its first
// Consul answer). The sandbox checks health every 100 ms.
func StartWithClient(tb testing.TB, service string) (*Sandbox, *federation.Client) {
	tb.Helper()
	sb, err := Start(Options{CheckInterval: 100 * time.Millisecond, CheckTimeout: 5 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(sb.Close)
	c, err := federation.New(sb.ConfigYAML(), federation.YAML)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := c.Get(context.Background(), service, "/")
		if err == nil && resp.Status == 200 {
			return sb, c
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s not ready after 20s: %v", service, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
