package consulcompat

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/federation/federation-go/federationtest"
	consul "github.com/hashicorp/consul/api"
)

// eventuallyWithin bounds every wait for a state the double reaches on its own (a check run,
// a TTL update becoming visible): generous for a loaded 2-core machine.
const eventuallyWithin = 15 * time.Second

// double is one running Consul double (datacenter zervigo-dc) and an official client on it.
type double struct {
	world  *federationtest.World
	url    string
	client *consul.Client
	// source is the SDK cluster configuration pointing at the double.
	source map[string]any
}

// startDouble starts a Consul double in-process (through the C ABI's scenario world, the same
// double the Rust tests use) and stops it when the test ends, failed or not.
func startDouble(t *testing.T) *double {
	t.Helper()
	world, err := federationtest.StartWorld([]byte(`{"clusters": [{"name": "zervigo", "services": {}}]}`))
	if err != nil {
		t.Fatalf("start the Consul double: %v", err)
	}
	t.Cleanup(world.Close)
	raw, err := world.Control(map[string]any{"op": "cluster_source", "cluster": "zervigo"})
	if err != nil {
		t.Fatalf("cluster source: %v", err)
	}
	var source map[string]any
	if err := json.Unmarshal(raw, &source); err != nil {
		t.Fatalf("cluster source %s: %v", raw, err)
	}
	address, _ := source["consul"].(map[string]any)["address"].(string)
	parsed, err := url.Parse(address)
	if err != nil || parsed.Host == "" {
		t.Fatalf("double address %q: %v", address, err)
	}
	client, err := consul.NewClient(&consul.Config{Address: parsed.Host, Scheme: "http"})
	if err != nil {
		t.Fatalf("consul client: %v", err)
	}
	return &double{world: world, url: address, client: client, source: source}
}

// eventually polls cond until it holds or eventuallyWithin passes.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(eventuallyWithin)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not reached within %s (last state: %s)", what, eventuallyWithin, last)
}

// instance is an HTTP service instance: /health answers healthStatus, everything else 200 with
// the instance id in the body.
type instance struct {
	server       *httptest.Server
	id           string
	healthStatus atomic.Int32
	requests     atomic.Int64
}

func startInstance(t *testing.T, id string) *instance {
	t.Helper()
	inst := &instance{id: id}
	inst.healthStatus.Store(http.StatusOK)
	inst.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			w.WriteHeader(int(inst.healthStatus.Load()))
			return
		}
		inst.requests.Add(1)
		_, _ = w.Write([]byte(inst.id))
	}))
	t.Cleanup(inst.server.Close)
	return inst
}

func (i *instance) port(t *testing.T) int {
	t.Helper()
	parsed, err := url.Parse(i.server.URL)
	if err != nil {
		t.Fatalf("instance url: %v", err)
	}
	port, err := strconv.Atoi(parsed.Port())
	if err != nil {
		t.Fatalf("instance port %q: %v", parsed.Port(), err)
	}
	return port
}

// healthOf returns the aggregated status of one instance (worst check), "" when absent.
func healthOf(t *testing.T, d *double, service, id string) string {
	t.Helper()
	entries, _, err := d.client.Health().Service(service, "", false, nil)
	if err != nil {
		t.Fatalf("health/service %s: %v", service, err)
	}
	for _, entry := range entries {
		if entry.Service.ID == id {
			return entry.Checks.AggregatedStatus()
		}
	}
	return ""
}

// rawGet sends a GET the official client would not build and returns status, body, headers.
func rawGet(t *testing.T, d *double, pathAndQuery string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(strings.TrimSuffix(d.url, "/") + pathAndQuery)
	if err != nil {
		t.Fatalf("GET %s: %v", pathAndQuery, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", pathAndQuery, err)
	}
	return resp.StatusCode, string(body), resp.Header
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
