package federationtest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
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

// TelemetryNames are the stable span and metric names of tests/telemetry-names.json: span name
// → attribute keys, metric name → label names (sorted). Every language's test compares its
// output with them, so a rename in one language fails.
type TelemetryNames struct {
	Spans   map[string][]string `json:"spans"`
	Metrics map[string][]string `json:"metrics"`
}

// ReadTelemetryNames reads tests/telemetry-names.json of this repository.
func ReadTelemetryNames(tb testing.TB) TelemetryNames {
	tb.Helper()
	_, here, _, _ := runtime.Caller(0)
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "..", "tests", "telemetry-names.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var names TelemetryNames
	if err := json.Unmarshal(raw, &names); err != nil {
		tb.Fatalf("tests/telemetry-names.json: %v", err)
	}
	return names
}
