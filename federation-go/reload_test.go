package federation_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	federation "github.com/federation/federation-go"
)

// Reload under calls: goroutines call while the configuration is reloaded several times (an
// instance added and removed, the policy changed); no call fails, and Health shows the
// generation. An invalid configuration is rejected with a config error naming the field, and
// the running one keeps serving.
func TestReloadUnderCallsAndRejectedReload(t *testing.T) {
	ok := func(w http.ResponseWriter, r *http.Request) {}
	a, b := upstream(t, ok), upstream(t, ok)
	one := oneClusterConfig([]int{port(t, a)}, "")
	two := oneClusterConfig([]int{port(t, a), port(t, b)}, "    timeout: { total: 4s }")
	c := newClient(t, one)

	var calls, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := c.Get(context.Background(), "svc", "/load")
				calls.Add(1)
				if err != nil || r.Status != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	for i := 0; i < 6; i++ {
		time.Sleep(100 * time.Millisecond)
		next := one
		if i%2 == 0 {
			next = two
		}
		if err := c.Reload(next, federation.YAML); err != nil {
			t.Fatalf("reload %d: %v", i+1, err)
		}
	}
	close(stop)
	wg.Wait()
	if calls.Load() < 50 || failed.Load() != 0 {
		t.Fatalf("%d of %d calls failed across reloads", failed.Load(), calls.Load())
	}

	bad := strings.Replace(one, "names: { a: svc-a }", "names: { nowhere: svc-a }", 1)
	err := c.Reload(bad, federation.YAML)
	if !errors.Is(err, federation.ErrConfig) || !strings.Contains(err.Error(), "nowhere") {
		t.Fatalf("invalid reload: %v", err)
	}
	if _, err := c.Get(context.Background(), "svc", "/still"); err != nil {
		t.Fatalf("the running configuration stopped serving: %v", err)
	}
	h, err := c.Health()
	if err != nil {
		t.Fatal(err)
	}
	if h.Config.Generation != 7 || h.Config.Source != "reload" || h.Config.LastRejected == nil {
		t.Fatalf("generation: %+v", h.Config)
	}
}
