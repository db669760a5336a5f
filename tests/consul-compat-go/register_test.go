package consulcompat

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	consul "github.com/hashicorp/consul/api"
)

func register(t *testing.T, d *double, reg *consul.AgentServiceRegistration) {
	t.Helper()
	if err := d.client.Agent().ServiceRegister(reg); err != nil {
		t.Fatalf("register %s: %v", reg.ID, err)
	}
}

func agentChecks(t *testing.T, d *double) map[string]*consul.AgentCheck {
	t.Helper()
	checks, err := d.client.Agent().Checks()
	if err != nil {
		t.Fatalf("agent/checks: %v", err)
	}
	return checks
}

func TestRegisterWithoutChecksSendsNullChecksAndIsAccepted(t *testing.T) {
	// What makes this test meaningful: the official client really sends nulls.
	wire, err := json.Marshal(consul.AgentServiceRegistration{Name: "orders"})
	if err != nil || !strings.Contains(string(wire), `"Checks":null`) || !strings.Contains(string(wire), `"Check":null`) {
		t.Fatalf("the official client no longer sends null checks (%s, %v): update this test", wire, err)
	}
	d := startDouble(t)
	register(t, d, &consul.AgentServiceRegistration{ID: "orders-1", Name: "orders", Address: "127.0.0.1", Port: 8080})

	services, err := d.client.Agent().Services()
	if err != nil {
		t.Fatalf("agent/services: %v", err)
	}
	got, ok := services["orders-1"]
	if !ok || got.Service != "orders" || got.Port != 8080 || got.Address != "127.0.0.1" {
		t.Fatalf("agent/services: %+v", services)
	}
	if got.Datacenter != "zervigo-dc" || got.Weights.Passing != 1 || got.Weights.Warning != 1 {
		t.Fatalf("agent/services defaults: %+v", got)
	}
	entries, _, err := d.client.Health().Service("orders", "", true, nil)
	if err != nil || len(entries) != 1 {
		t.Fatalf("health/service?passing: %v %+v", err, entries)
	}
	if checks := entries[0].Checks; len(checks) != 1 || checks[0].CheckID != "serfHealth" {
		t.Fatalf("a service without checks has only the node check: %+v", checks)
	}
	if len(agentChecks(t, d)) != 0 {
		t.Fatalf("agent/checks lists no check (serfHealth is not an agent check)")
	}
}

func TestTTLCheckPassWarnFailAndUpdate(t *testing.T) {
	d := startDouble(t)
	register(t, d, &consul.AgentServiceRegistration{
		ID: "orders-1", Name: "orders", Address: "127.0.0.1", Port: 8080,
		Check: &consul.AgentServiceCheck{TTL: "30s"},
	})
	check, ok := agentChecks(t, d)["service:orders-1"]
	if !ok {
		t.Fatalf("a single check without CheckID is named service:<id>: %+v", agentChecks(t, d))
	}
	if check.Name != "Service 'orders' check" || check.Type != "ttl" || check.ServiceID != "orders-1" || check.ServiceName != "orders" {
		t.Fatalf("generated check: %+v", check)
	}
	if check.Status != consul.HealthCritical {
		t.Fatalf("a new TTL check starts critical, got %s", check.Status)
	}
	agent := d.client.Agent()
	steps := []struct {
		update  func() error
		status  string
		passing int
	}{
		{func() error { return agent.PassTTL("service:orders-1", "all good") }, consul.HealthPassing, 1},
		{func() error { return agent.WarnTTL("service:orders-1", "slow") }, consul.HealthWarning, 0},
		{func() error { return agent.FailTTL("service:orders-1", "down") }, consul.HealthCritical, 0},
		{func() error { return agent.UpdateTTL("service:orders-1", "back", "pass") }, consul.HealthPassing, 1},
	}
	for _, step := range steps {
		if err := step.update(); err != nil {
			t.Fatalf("TTL update to %s: %v", step.status, err)
		}
		if got := healthOf(t, d, "orders", "orders-1"); got != step.status {
			t.Fatalf("after the update to %s, health/service says %s", step.status, got)
		}
		passing, _, err := d.client.Health().Service("orders", "", true, nil)
		if err != nil || len(passing) != step.passing {
			t.Fatalf("?passing after %s: %v, %d entries (a warning is not passing)", step.status, err, len(passing))
		}
	}
	if out := agentChecks(t, d)["service:orders-1"].Output; out != "back" {
		t.Fatalf("UpdateTTL output: %q", out)
	}
	err := agent.PassTTL("no-such-check", "")
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), `Unknown check ID "no-such-check"`) {
		t.Fatalf("TTL update of an unknown check: %v", err)
	}
}

func TestHTTPCheckFollowsTheInstance(t *testing.T) {
	d := startDouble(t)
	inst := startInstance(t, "orders-1")
	inst.healthStatus.Store(http.StatusServiceUnavailable)
	register(t, d, &consul.AgentServiceRegistration{
		ID: "orders-1", Name: "orders", Address: "127.0.0.1", Port: inst.port(t),
		Check: &consul.AgentServiceCheck{HTTP: inst.server.URL + "/health", Interval: "100ms", Timeout: "1s"},
	})
	if check := agentChecks(t, d)["service:orders-1"]; check == nil || check.Type != "http" {
		t.Fatalf("HTTP check: %+v", agentChecks(t, d))
	}
	eventually(t, "critical while /health answers 503", func() (bool, string) {
		got := healthOf(t, d, "orders", "orders-1")
		return got == consul.HealthCritical && agentChecks(t, d)["service:orders-1"].Output != "", got
	})
	inst.healthStatus.Store(http.StatusOK)
	eventually(t, "passing once /health answers 200", func() (bool, string) {
		got := healthOf(t, d, "orders", "orders-1")
		return got == consul.HealthPassing, got
	})
}

func TestCheckIDsAndNamesOfCheckAndChecks(t *testing.T) {
	d := startDouble(t)
	register(t, d, &consul.AgentServiceRegistration{
		ID: "orders-1", Name: "orders",
		Check: &consul.AgentServiceCheck{TTL: "30s"},
		Checks: consul.AgentServiceChecks{
			{TTL: "30s", Status: consul.HealthPassing},
			{CheckID: "orders-heartbeat", Name: "heartbeat", TTL: "10s", Notes: "sent by the app"},
		},
	})
	checks := agentChecks(t, d)
	want := map[string]string{
		"service:orders-1:1": "Service 'orders' check",
		"service:orders-1:2": "Service 'orders' check",
		"orders-heartbeat":   "heartbeat",
	}
	if len(checks) != len(want) {
		t.Fatalf("Check and Checks together number every check: %+v", checks)
	}
	for id, name := range want {
		if checks[id] == nil || checks[id].Name != name {
			t.Fatalf("check %s named %q expected, got %+v", id, name, checks[id])
		}
	}
	if checks["service:orders-1:2"].Status != consul.HealthPassing || checks["service:orders-1:1"].Status != consul.HealthCritical {
		t.Fatalf("initial Status honoured, default critical: %+v", checks)
	}
	if checks["orders-heartbeat"].Notes != "sent by the app" {
		t.Fatalf("Notes echoed: %+v", checks["orders-heartbeat"])
	}
	entries, _, err := d.client.Health().Service("orders", "", false, nil)
	if err != nil || len(entries) != 1 || len(entries[0].Checks) != 4 {
		t.Fatalf("health/service lists serfHealth and the three checks: %v %+v", err, entries)
	}
}

func TestRegistrationFieldsAreEchoed(t *testing.T) {
	d := startDouble(t)
	register(t, d, &consul.AgentServiceRegistration{
		ID: "orders-1", Name: "orders", Address: "127.0.0.1", Port: 8080,
		Tags:              []string{"v2", "grpc"},
		Meta:              map[string]string{"zone": "a"},
		Weights:           &consul.AgentWeights{Passing: 5, Warning: 2},
		EnableTagOverride: true,
		TaggedAddresses:   map[string]consul.ServiceAddress{"lan": {Address: "10.0.0.7", Port: 9090}},
		Connect:           &consul.AgentServiceConnect{Native: true},
	})
	register(t, d, &consul.AgentServiceRegistration{
		Kind: consul.ServiceKindConnectProxy, ID: "orders-1-sidecar", Name: "orders-sidecar-proxy",
		Address: "127.0.0.1", Port: 21000,
		Proxy: &consul.AgentServiceConnectProxyConfig{
			DestinationServiceName: "orders", DestinationServiceID: "orders-1", LocalServicePort: 8080,
		},
	})
	svc, _, err := d.client.Agent().Service("orders-1", nil)
	if err != nil {
		t.Fatalf("agent/service/orders-1: %v", err)
	}
	if svc.Weights != (consul.AgentWeights{Passing: 5, Warning: 2}) || !svc.EnableTagOverride || svc.Meta["zone"] != "a" {
		t.Fatalf("weights, tag override, meta: %+v", svc)
	}
	if svc.Connect == nil || !svc.Connect.Native {
		t.Fatalf("Connect echoed: %+v", svc.Connect)
	}
	lan, lanIPv4 := svc.TaggedAddresses["lan"], svc.TaggedAddresses["lan_ipv4"]
	if lan.Address != "10.0.0.7" || lan.Port != 9090 || lanIPv4.Address != "127.0.0.1" || lanIPv4.Port != 8080 {
		t.Fatalf("tagged addresses (given ones kept, lan_ipv4/wan_ipv4 added): %+v", svc.TaggedAddresses)
	}
	if svc.ContentHash == "" {
		t.Fatalf("agent/service/:id carries a ContentHash")
	}
	proxy, _, err := d.client.Agent().Service("orders-1-sidecar", nil)
	if err != nil || proxy.Kind != consul.ServiceKindConnectProxy || proxy.Proxy == nil ||
		proxy.Proxy.DestinationServiceName != "orders" || proxy.Proxy.LocalServicePort != 8080 {
		t.Fatalf("connect-proxy echoed: %v %+v", err, proxy)
	}
	entries, _, err := d.client.Health().Service("orders", "", false, nil)
	if err != nil || len(entries) != 1 {
		t.Fatalf("health/service: %v %+v", err, entries)
	}
	s := entries[0].Service
	if s.Weights.Passing != 5 || !s.EnableTagOverride || s.Connect == nil || !s.Connect.Native || s.TaggedAddresses["lan"].Port != 9090 {
		t.Fatalf("health/service echoes the registration: %+v", s)
	}
	catalog, _, err := d.client.Catalog().Service("orders-sidecar-proxy", "", nil)
	if err != nil || len(catalog) != 1 || catalog[0].ServiceProxy == nil || catalog[0].ServiceProxy.DestinationServiceID != "orders-1" {
		t.Fatalf("catalog/service echoes Proxy: %v %+v", err, catalog)
	}
	sidecars, _, err := d.client.Health().Service("orders-sidecar-proxy", "", false, nil)
	if err != nil || len(sidecars) != 1 || sidecars[0].Service.Kind != consul.ServiceKindConnectProxy {
		t.Fatalf("health/service echoes Kind: %v %+v", err, sidecars)
	}
	_, _, err = d.client.Agent().Service("nope", nil)
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "unknown service ID: nope") {
		t.Fatalf("agent/service of an unknown id: %v", err)
	}
}

func TestDeregisterRemovesServiceAndChecks(t *testing.T) {
	d := startDouble(t)
	register(t, d, &consul.AgentServiceRegistration{ID: "orders-1", Name: "orders", Check: &consul.AgentServiceCheck{TTL: "30s"}})
	register(t, d, &consul.AgentServiceRegistration{ID: "orders-2", Name: "orders"})
	if err := d.client.Agent().ServiceDeregister("orders-1"); err != nil {
		t.Fatalf("deregister: %v", err)
	}
	services, err := d.client.Agent().Services()
	if err != nil || services["orders-1"] != nil || services["orders-2"] == nil {
		t.Fatalf("agent/services after deregister: %v %+v", err, services)
	}
	if len(agentChecks(t, d)) != 0 {
		t.Fatalf("the service's checks go with it: %+v", agentChecks(t, d))
	}
	entries, _, err := d.client.Health().Service("orders", "", false, nil)
	if err != nil || len(entries) != 1 || entries[0].Service.ID != "orders-2" {
		t.Fatalf("health/service after deregister: %v %+v", err, entries)
	}
	err = d.client.Agent().ServiceDeregister("orders-1")
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("deregistering an unknown id: %v", err)
	}
}

func TestRegisterRejectsWhatConsulRejects(t *testing.T) {
	d := startDouble(t)
	cases := []struct {
		reg  consul.AgentServiceRegistration
		want string
	}{
		{consul.AgentServiceRegistration{ID: "x"}, "Missing service name"},
		{consul.AgentServiceRegistration{Name: "x", Address: "0.0.0.0"}, "Invalid service address"},
		{consul.AgentServiceRegistration{Name: "x", Weights: &consul.AgentWeights{Passing: 0, Warning: 1}}, "Invalid Weights"},
		{consul.AgentServiceRegistration{Name: "x", Check: &consul.AgentServiceCheck{HTTP: "http://127.0.0.1:1/"}}, "Interval must be > 0"},
		{consul.AgentServiceRegistration{Name: "x", Check: &consul.AgentServiceCheck{TTL: "10"}}, `time: missing unit in duration "10"`},
	}
	for _, c := range cases {
		err := d.client.Agent().ServiceRegister(&c.reg)
		if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("register %+v: want 400 %q, got %v", c.reg, c.want, err)
		}
		if err != nil && strings.Contains(err.Error(), "invalid type") {
			t.Errorf("register %+v: a decode error about the double's own types: %v", c.reg, err)
		}
	}
}
