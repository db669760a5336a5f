package consulcompat

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	federation "github.com/federation/federation-go"
	consul "github.com/hashicorp/consul/api"
)

// sdkClient is a federation client whose logical service "orders" is the Consul service
// `consulName` in the double's cluster.
func sdkClient(t *testing.T, d *double, consulName string) *federation.Client {
	t.Helper()
	config, err := json.Marshal(map[string]any{
		"clusters": map[string]any{"zervigo": d.source},
		"services": map[string]any{"orders": map[string]any{"names": map[string]string{"zervigo": consulName}}},
	})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	client, err := federation.New(string(config), federation.JSON)
	if err != nil {
		t.Fatalf("federation.New(%s): %v", config, err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func TestSDKDiscoversInstancesRegisteredByTheGoClient(t *testing.T) {
	d := startDouble(t)
	one, two, three := startInstance(t, "orders-1"), startInstance(t, "orders-2"), startInstance(t, "orders-3")
	register(t, d, &consul.AgentServiceRegistration{
		ID: "orders-1", Name: "orders", Address: "127.0.0.1", Port: one.port(t), Tags: []string{"v2"},
		Check: &consul.AgentServiceCheck{HTTP: one.server.URL + "/health", Interval: "100ms", Timeout: "1s"},
	})
	// No Address: consumers fall back to the node's address (127.0.0.1 for the double).
	register(t, d, &consul.AgentServiceRegistration{
		ID: "orders-2", Name: "orders", Port: two.port(t),
		Checks: consul.AgentServiceChecks{{HTTP: two.server.URL + "/health", Interval: "100ms"}},
	})
	// No checks at all ("Check": null, "Checks": null): healthy as far as Consul is concerned.
	register(t, d, &consul.AgentServiceRegistration{ID: "orders-3", Name: "orders", Address: "127.0.0.1", Port: three.port(t)})
	client := sdkClient(t, d, "orders")
	seen := map[string]bool{}
	eventually(t, "the SDK routes to the three client-registered instances", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := client.Get(ctx, "orders", "/work")
		if err == nil && resp.Status == http.StatusOK {
			seen[resp.Instance] = true
		}
		return seen["orders-1"] && seen["orders-2"] && seen["orders-3"], "seen " + keys(seen)
	})

	// The instance's own check fails: the double marks it critical and the SDK stops using it.
	two.healthStatus.Store(http.StatusInternalServerError)
	eventually(t, "the double reports orders-2 critical", func() (bool, string) {
		got := healthOf(t, d, "orders", "orders-2")
		return got == consul.HealthCritical, got
	})
	eventually(t, "the SDK sends 20 calls in a row to the healthy instances only", func() (bool, string) {
		before := two.requests.Load()
		for range 20 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			resp, err := client.Get(ctx, "orders", "/work")
			cancel()
			if err != nil || resp.Instance == "orders-2" {
				return false, "a call went to orders-2 or failed"
			}
		}
		return two.requests.Load() == before, "orders-2 still received calls"
	})
}

func TestGoClientSeesInstancesRegisteredByTheSDK(t *testing.T) {
	d := startDouble(t)
	inst := startInstance(t, "billing-1")
	client := sdkClient(t, d, "billing")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	registered, err := client.Register(ctx, "zervigo", federation.Registration{
		Name: "billing", ID: "billing-1", Address: "127.0.0.1", Port: inst.port(t),
		Tags: []string{"v1"}, Meta: map[string]string{"team": "payments"}, TTL: 3 * time.Second,
	})
	if err != nil {
		t.Fatalf("SDK register: %v", err)
	}
	defer func() { _ = registered.Close() }()

	eventually(t, "the official client sees the SDK's instance passing", func() (bool, string) {
		entries, _, err := d.client.Health().Service("billing", "v1", true, nil)
		if err != nil {
			return false, err.Error()
		}
		return len(entries) == 1 && entries[0].Service.ID == "billing-1" && entries[0].Service.Port == inst.port(t), "not yet"
	})
	services, err := d.client.Agent().Services()
	if err != nil || services["billing-1"] == nil || services["billing-1"].Meta["team"] != "payments" {
		t.Fatalf("agent/services: %v %+v", err, services)
	}
	nodes, _, err := d.client.Catalog().Service("billing", "", nil)
	if err != nil || len(nodes) != 1 || nodes[0].ServiceAddress != "127.0.0.1" {
		t.Fatalf("catalog/service: %v %+v", err, nodes)
	}
	if err := registered.Deregister(ctx); err != nil {
		t.Fatalf("SDK deregister: %v", err)
	}
	entries, _, err := d.client.Health().Service("billing", "", false, nil)
	if err != nil || len(entries) != 0 {
		t.Fatalf("after the SDK deregistered: %v %d entries", err, len(entries))
	}
}

func keys(m map[string]bool) string {
	out := ""
	for k := range m {
		out += k + " "
	}
	return out
}
