package federation_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	federation "github.com/federation/federation-go"
	"github.com/federation/federation-go/federationtest"
)

func startSandbox(t *testing.T) (*federationtest.Sandbox, *federation.Client) {
	t.Helper()
	sb, err := federationtest.Start(federationtest.Options{CheckInterval: 100 * time.Millisecond, CheckTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	c := newClient(t, sb.ConfigYAML())
	waitReady(t, c, "user")
	return sb, c
}

// waitReady waits until discovery has answered and a call to service succeeds (a new client
// has no instances until its first Consul answer).
func waitReady(t *testing.T, c *federation.Client, service string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := c.Get(context.Background(), service, "/")
		if err == nil && resp.Status == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 20s: %v", service, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCluster polls until a GET of service is answered by cluster.
func waitCluster(t *testing.T, c *federation.Client, service, cluster string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := c.Get(context.Background(), service, "/")
		if err == nil && resp.Cluster == cluster {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never served by %s: %v %+v", service, cluster, err, resp)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Every zervigo instance of the user service dies: calls fail over to looma.
func TestSandboxFailoverBetweenClusters(t *testing.T) {
	sb, c := startSandbox(t)
	ctx := context.Background()
	waitCluster(t, c, "user", "zervigo") // the preferred cluster, once both have answered
	if err := sb.Kill("zervigo", "user-service", federationtest.All); err != nil {
		t.Fatal(err)
	}
	// The first call after the kill may spend its attempts on the dead instances before they
	// are ejected; from then on every call is served by looma.
	waitCluster(t, c, "user", "looma")
	for i := range 20 {
		resp, err := c.Get(ctx, "user", "/api/v1/users/42")
		if err != nil {
			t.Fatalf("call %d after the failover: %v", i, err)
		}
		if resp.Status != 200 || resp.Cluster != "looma" {
			t.Fatalf("call %d after the failover: status %d from %q", i, resp.Status, resp.Cluster)
		}
	}
}

// One instance is killed while GETs run: not one GET fails (retries go to the others).
func TestSandboxInstanceKillZeroFailedGets(t *testing.T) {
	sb, c := startSandbox(t)
	var ok, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(context.Background(), "user", "/api/v1/users/42")
				if err != nil || resp.Status != 200 {
					failed.Add(1)
					t.Errorf("GET failed: %v %+v", err, resp)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	if err := sb.Kill("zervigo", "user-service", 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Errorf("%d GETs failed, %d succeeded", failed.Load(), ok.Load())
	}
	n, err := sb.Requests("zervigo", "user-service", federationtest.All)
	if err != nil || n == 0 {
		t.Errorf("zervigo served %d requests (%v)", n, err)
	}
}
