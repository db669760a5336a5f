package federation_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	federation "github.com/federation/federation-go"
	"github.com/federation/federation-go/federationtest"
)

// A Go service registers itself in the sandbox's looma Consul with a TTL check: the heartbeat
// keeps it passing, so another client routes calls to it; after Deregister it gets no more.
func TestRegisterMakesTheInstanceRoutableAndDeregisterRemovesIt(t *testing.T) {
	sb, err := federationtest.Start(federationtest.Options{CheckInterval: 100 * time.Millisecond, CheckTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	announcer := newClient(t, sb.ConfigYAML())
	caller := newClient(t, sb.ConfigYAML())
	up := upstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"instance":"go-rp-1"}`)
	})
	host, p := hostPort(t, up)
	ctx := context.Background()

	reg, err := announcer.Register(ctx, "looma", federation.Registration{
		Name: "resume-processing", ID: "go-rp-1", Address: host, Port: p,
		Tags: []string{"go"}, Meta: map[string]string{"lang": "go"}, TTL: 900 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	t.Cleanup(func() { reg.Close() })
	if reg.ServiceID() != "go-rp-1" || reg.Cluster() != "looma" {
		t.Fatalf("registered as %s in %s", reg.ServiceID(), reg.Cluster())
	}

	// Routed to by the other client, also several TTLs later (the heartbeat keeps it passing).
	for _, phase := range []string{"first", "after three TTLs"} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			resp, err := caller.Get(ctx, "resume-processing", "/")
			if err == nil && resp.Instance == "go-rp-1" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the registered instance never served a call (last: %v)", phase, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(2700 * time.Millisecond)
	}

	if err := reg.Deregister(ctx); err != nil {
		t.Fatalf("Deregister: %v", err)
	}
	if err := reg.Deregister(ctx); err != nil {
		t.Fatalf("second Deregister: %v", err)
	}
	// Once discovery has seen the removal, 30 calls in a row avoid the instance.
	deadline := time.Now().Add(20 * time.Second)
	clean := 0
	for clean < 30 {
		resp, err := caller.Get(ctx, "resume-processing", "/")
		switch {
		case err != nil:
			t.Fatalf("call after deregister: %v", err)
		case resp.Instance == "go-rp-1":
			clean = 0
		default:
			clean++
		}
		if time.Now().After(deadline) {
			t.Fatal("the deregistered instance kept receiving calls")
		}
	}

	// Deregistering an unknown id is a discovery error (Consul's 404) naming the cluster.
	err = announcer.Deregister(ctx, "looma", "go-rp-1")
	if !errors.Is(err, federation.ErrDiscovery) {
		t.Fatalf("want ErrDiscovery, got %v", err)
	}
}

func TestRegisterMistakesAreInvalidRequests(t *testing.T) {
	c := newClient(t, oneClusterConfig([]int{closedPort(t)}, ""))
	ctx := context.Background()
	cases := map[string]struct {
		cluster string
		reg     federation.Registration
	}{
		"unknown cluster": {"nowhere", federation.Registration{Name: "x", Address: "127.0.0.1", Port: 80}},
		"static cluster":  {"a", federation.Registration{Name: "x", Address: "127.0.0.1", Port: 80}},
		"port":            {"a", federation.Registration{Name: "x", Address: "127.0.0.1", Port: 70000}},
	}
	for name, tc := range cases {
		_, err := c.Register(ctx, tc.cluster, tc.reg)
		if !errors.Is(err, federation.ErrInvalidRequest) {
			t.Errorf("%s: want ErrInvalidRequest, got %v", name, err)
		}
	}
	if err := c.Deregister(ctx, "a", "x"); !errors.Is(err, federation.ErrInvalidRequest) {
		t.Errorf("static cluster deregister: want ErrInvalidRequest, got %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Register(cancelled, "a", federation.Registration{Name: "x"}); !errors.Is(err, federation.ErrCancelled) {
		t.Errorf("cancelled context: want ErrCancelled, got %v", err)
	}
	c.Close()
	if _, err := c.Register(ctx, "a", federation.Registration{Name: "x", Address: "127.0.0.1", Port: 80}); !errors.Is(err, federation.ErrClosed) {
		t.Errorf("closed client: want ErrClosed, got %v", err)
	}
}
