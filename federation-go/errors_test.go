package federation_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	federation "github.com/federation/federation-go"
)

var sentinels = []error{
	federation.ErrConfig, federation.ErrDiscovery, federation.ErrNoHealthyInstance,
	federation.ErrCircuitOpen, federation.ErrTimeout, federation.ErrTransport,
	federation.ErrBudgetExhausted, federation.ErrOverloaded, federation.ErrCancelled,
	federation.ErrInvalidRequest, federation.ErrInternal,
}

// matchesOnly checks that err is an *Error matching want and no other kind's sentinel.
func matchesOnly(t *testing.T, err error, want error) {
	t.Helper()
	var fe *federation.Error
	if !errors.As(err, &fe) {
		t.Fatalf("want *federation.Error matching %v, got %T: %v", want, err, err)
	}
	for _, s := range sentinels {
		if got := errors.Is(err, s); got != (s == want) {
			t.Errorf("errors.Is(%v, %v) = %v; error kind %v", err, s, got, fe.Kind)
		}
	}
	if fe.Message == "" {
		t.Errorf("empty message in %#v", fe)
	}
}

func hanging(arrived chan<- struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if arrived != nil {
			select {
			case arrived <- struct{}{}:
			default:
			}
		}
		<-r.Context().Done()
	}
}

func TestEveryKindMapsToItsSentinel(t *testing.T) {
	kinds := []federation.Kind{
		federation.KindInternal, federation.KindConfig, federation.KindDiscovery,
		federation.KindNoHealthyInstance, federation.KindCircuitOpen, federation.KindTimeout,
		federation.KindTransport, federation.KindBudgetExhausted, federation.KindOverloaded,
		federation.KindCancelled, federation.KindInvalidRequest,
	}
	seen := map[error]bool{}
	for _, k := range kinds {
		err := &federation.Error{Kind: k, Message: "m"}
		matchesOnly(t, err, k.Sentinel())
		if seen[k.Sentinel()] {
			t.Errorf("kind %v shares sentinel %v", k, k.Sentinel())
		}
		seen[k.Sentinel()] = true
	}
}

func TestConfigError(t *testing.T) {
	_, err := federation.New("clusters: {}\nservices: { user: { prefr: zervigo } }", federation.YAML)
	matchesOnly(t, err, federation.ErrConfig)
	_, err = federation.New("{}", federation.Format(42))
	matchesOnly(t, err, federation.ErrConfig)
	_, err = federation.NewFromFile("/nonexistent/federation.yaml")
	matchesOnly(t, err, federation.ErrConfig)
}

func TestInvalidRequest(t *testing.T) {
	ok := upstream(t, func(w http.ResponseWriter, r *http.Request) {})
	c := newClient(t, oneClusterConfig([]int{port(t, ok)}, ""))
	ctx := context.Background()
	_, err := c.Get(ctx, "no-such-service", "/")
	matchesOnly(t, err, federation.ErrInvalidRequest)
	_, err = c.Do(ctx, "svc", &federation.Request{Method: "BAD METHOD"})
	matchesOnly(t, err, federation.ErrInvalidRequest)
	_, err = c.Do(ctx, "svc", &federation.Request{Header: http.Header{"Bad Name": {"x"}}})
	matchesOnly(t, err, federation.ErrInvalidRequest)
	_, err = c.Get(ctx, "svc\x00", "/")
	matchesOnly(t, err, federation.ErrInvalidRequest)
	_, err = c.Do(ctx, "svc", nil)
	matchesOnly(t, err, federation.ErrInvalidRequest)
}

func TestNoHealthyInstance(t *testing.T) {
	c := newClient(t, oneClusterConfig(nil, ""))
	_, err := c.Get(context.Background(), "svc", "/")
	matchesOnly(t, err, federation.ErrNoHealthyInstance)
}

func TestTransport(t *testing.T) {
	c := newClient(t, oneClusterConfig([]int{closedPort(t)}, "    retry: { max_attempts: 1 }"))
	_, err := c.Get(context.Background(), "svc", "/")
	matchesOnly(t, err, federation.ErrTransport)
}

func TestDeadlineIsTimeout(t *testing.T) {
	arrived := make(chan struct{}, 1)
	s := upstream(t, hanging(arrived))
	c := newClient(t, oneClusterConfig([]int{port(t, s)}, "    timeout: { attempt: 10s, total: 10s }"))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Get(ctx, "svc", "/")
	matchesOnly(t, err, federation.ErrTimeout)
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("deadline of 300ms took %v", waited)
	}
	// The request's own timeout gives the same sentinel.
	_, err = c.Do(context.Background(), "svc", &federation.Request{Timeout: 200 * time.Millisecond})
	matchesOnly(t, err, federation.ErrTimeout)
}

func TestOverloaded(t *testing.T) {
	arrived := make(chan struct{}, 1)
	s := upstream(t, hanging(arrived))
	c := newClient(t, oneClusterConfig([]int{port(t, s)}, "    limits: { max_concurrent: 1 }\n    timeout: { attempt: 10s, total: 10s }"))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.Get(ctx, "svc", "/hold")
	}()
	<-arrived
	_, err := c.Get(context.Background(), "svc", "/")
	matchesOnly(t, err, federation.ErrOverloaded)
	cancel()
	wg.Wait()
}

// An open breaker ejects its instance (panic routing, on by default, is turned off: it would send
// the call to the held-out instance, which still accepts connections); with every instance ejected the core reports
// ErrNoHealthyInstance naming the ejections (ErrCircuitOpen is reserved for a pick that finds
// every candidate refusing its permit, a race the core does not expose deterministically; its
// mapping is covered by TestKindCodes).
func TestOpenBreakerEjectsInstance(t *testing.T) {
	s := upstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	c := newClient(t, oneClusterConfig([]int{port(t, s)},
		"    retry: { max_attempts: 1 }\n    failover: { panic_threshold: false }\n    breaker: { consecutive_failures: 1, open_for: 30s, max_open_for: 60s }"))
	resp, err := c.Get(context.Background(), "svc", "/")
	if err != nil || resp.Status != 500 {
		t.Fatalf("first call: %v %v", resp, err)
	}
	_, err = c.Get(context.Background(), "svc", "/")
	matchesOnly(t, err, federation.ErrNoHealthyInstance)
	if !strings.Contains(err.Error(), "ejected") {
		t.Errorf("message does not say the instance is ejected: %v", err)
	}
}

func TestBudgetExhausted(t *testing.T) {
	// Connection refused needs a retry, and the budget allows none.
	c := newClient(t, oneClusterConfig([]int{closedPort(t)},
		"    retry: { max_attempts: 3, budget: { percent: 0, min_per_second: 0 } }"))
	_, err := c.Get(context.Background(), "svc", "/")
	matchesOnly(t, err, federation.ErrBudgetExhausted)
}

func TestCancelledContext(t *testing.T) {
	s := upstream(t, hanging(nil))
	c := newClient(t, oneClusterConfig([]int{port(t, s)}, ""))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Get(ctx, "svc", "/")
	matchesOnly(t, err, federation.ErrCancelled)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("want context.Canceled too: %v", err)
	}
}
