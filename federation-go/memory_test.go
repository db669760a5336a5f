package federation_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	federation "github.com/federation/federation-go"
)

// rssKiB is this process's resident set (VmRSS of /proc/self/status) in KiB.
func rssKiB(t *testing.T) int {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if fields := strings.Fields(line); len(fields) >= 2 && fields[0] == "VmRSS:" {
			kib, err := strconv.Atoi(fields[1])
			if err != nil {
				t.Fatal(err)
			}
			return kib
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// TestBindingMemory is a measurement, not a check: bench/binding_memory.py runs it once per
// client kind with FEDERATION_MEMORY_KIND (idle, scale-lazy, scale), FEDERATION_MEMORY_URLS
// (the two Consul doubles it serves from its own process) and FEDERATION_MEMORY_SERVICES, and
// reads the "binding-memory <before> <after>" line (KiB). Skipped without them.
func TestBindingMemory(t *testing.T) {
	kind, urls := os.Getenv("FEDERATION_MEMORY_KIND"), strings.Fields(os.Getenv("FEDERATION_MEMORY_URLS"))
	if kind == "" || len(urls) != 2 {
		t.Skip("a measurement run by bench/binding_memory.py")
	}
	services, err := strconv.Atoi(os.Getenv("FEDERATION_MEMORY_SERVICES"))
	if err != nil || services < 1 {
		t.Fatalf("FEDERATION_MEMORY_SERVICES: want a positive number, got %q", os.Getenv("FEDERATION_MEMORY_SERVICES"))
	}
	if kind == "idle" {
		services = 1
	}
	var config strings.Builder
	config.WriteString("clusters:\n")
	dcs := []string{"scale-a", "scale-b"}
	for i, dc := range dcs {
		fmt.Fprintf(&config, "  %s:\n    consul: { address: %q, datacenter: %s, wait: 5s }\n", dc, urls[i], dc)
	}
	config.WriteString("services:\n")
	for i := 0; i < services; i++ {
		name := fmt.Sprintf("svc-%04d", i)
		fmt.Fprintf(&config, "  %s:\n    prefer: scale-a\n    names: { scale-a: %s, scale-b: %s }\n", name, name, name)
	}
	fmt.Fprintf(&config, "discovery:\n  lazy_watches: %t\n", kind == "scale-lazy")
	before := rssKiB(t)
	c, err := federation.New(config.String(), federation.YAML)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if kind != "scale-lazy" {
		if err := c.WaitReady(60 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	fmt.Printf("binding-memory %d %d\n", before, rssKiB(t))
}
