package federation_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	federation "github.com/federation/federation-go"
)

func TestResponseCarriesHowItWasServed(t *testing.T) {
	s := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo", r.Header.Get("X-In"))
		w.Header().Add("X-Multi", "1")
		w.Header().Add("X-Multi", "2")
		body := make([]byte, r.ContentLength)
		r.Body.Read(body)
		w.WriteHeader(201)
		w.Write(append([]byte(r.Method+" "+r.URL.RequestURI()+" "), body...))
	})
	c := newClient(t, oneClusterConfig([]int{port(t, s)}, ""))
	resp, err := c.Do(context.Background(), "svc", &federation.Request{
		Method: "POST", Path: "/items?x=1", Header: http.Header{"X-In": {"hello"}}, Body: []byte("payload"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 201 || string(resp.Body) != "POST /items?x=1 payload" {
		t.Errorf("status %d body %q", resp.Status, resp.Body)
	}
	if resp.Header.Get("X-Echo") != "hello" || len(resp.Header.Values("X-Multi")) != 2 {
		t.Errorf("headers %v", resp.Header)
	}
	if resp.Cluster != "a" || resp.Instance != "i0" || resp.Attempts != 1 {
		t.Errorf("served by %q/%q in %d attempts", resp.Cluster, resp.Instance, resp.Attempts)
	}
	if resp.Cache != federation.CacheBypass {
		t.Errorf("cache %q", resp.Cache)
	}
}

// Responses with more headers and attempts than the Go side reads in one batch keep them all.
func TestManyHeadersAndAttemptsAreAllReported(t *testing.T) {
	var calls atomic.Int32
	s := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 10 {
			w.WriteHeader(503)
			return
		}
		for i := range 40 {
			w.Header().Set(fmt.Sprintf("X-H%02d", i), strconv.Itoa(i))
		}
		w.Write([]byte("ok"))
	})
	c := newClient(t, oneClusterConfig([]int{port(t, s)},
		"    retry: { max_attempts: 10, backoff: { base: 1ms, max: 2ms }, budget: { percent: 100, min_per_second: 100, window: 10s } }\n"+
			"    breaker: { consecutive_failures: 100 }"))
	resp, err := c.Get(context.Background(), "svc", "/")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Attempts != 10 || len(resp.Tried) != 10 || resp.Tried[9].Instance != "i0" {
		t.Errorf("attempts %d, tried %v", resp.Attempts, resp.Tried)
	}
	// Timings too, from the batch (the first 8) and read one by one beyond it.
	for i, a := range resp.Tried {
		want, status := "retryable_status", 503
		if i == len(resp.Tried)-1 {
			want, status = "success", 200
		}
		if a.Outcome != want || a.Status != status || a.Duration <= 0 || (i > 0 && a.Offset < resp.Tried[i-1].Offset+resp.Tried[i-1].Duration) {
			t.Errorf("attempt %d: %+v", i+1, a)
		}
	}
	for i := range 40 {
		if got := resp.Header.Get(fmt.Sprintf("X-H%02d", i)); got != strconv.Itoa(i) {
			t.Errorf("header X-H%02d = %q", i, got)
		}
	}
}

func TestFailoverToOtherCluster(t *testing.T) {
	b := upstream(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("from b")) })
	// Cluster a (preferred) has one instance refusing connections.
	c := newClient(t, twoClusterConfig([]int{closedPort(t)}, []int{port(t, b)}, ""))
	resp, err := c.Get(context.Background(), "svc", "/")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Cluster != "b" || string(resp.Body) != "from b" {
		t.Errorf("served by %q: %q", resp.Cluster, resp.Body)
	}
}

// A cancelled context cancels the call in the core: the upstream sees its request abandoned
// (the connection closed) and Do returns at once.
func TestContextCancellationAbandonsUpstreamRequest(t *testing.T) {
	arrived := make(chan struct{}, 1)
	abandoned := make(chan struct{}, 1)
	s := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done() // closed when the client drops the connection
		abandoned <- struct{}{}
	})
	c := newClient(t, oneClusterConfig([]int{port(t, s)}, "    timeout: { attempt: 30s, total: 30s }"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Get(ctx, "svc", "/slow")
		done <- err
	}()
	<-arrived
	cancel()
	select {
	case err := <-done:
		matchesOnly(t, err, federation.ErrCancelled)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("want context.Canceled: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Do did not return after cancel")
	}
	select {
	case <-abandoned:
	case <-time.After(10 * time.Second):
		t.Fatal("upstream never saw the request abandoned")
	}
}

func TestCloseWhileCallsInFlight(t *testing.T) {
	arrived := make(chan struct{}, 100)
	s := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	})
	c, err := federation.New(oneClusterConfig([]int{port(t, s)}, "    timeout: { attempt: 30s, total: 30s }"), federation.YAML)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := c.Get(context.Background(), "svc", "/")
			errs <- err
		}()
	}
	for range n {
		<-arrived
	}
	var wg sync.WaitGroup
	for range 4 { // concurrent, idempotent
		wg.Add(1)
		go func() { defer wg.Done(); c.Close() }()
	}
	wg.Wait()
	for range n {
		select {
		case err := <-errs:
			if !errors.Is(err, federation.ErrClosed) || !errors.Is(err, federation.ErrCancelled) {
				t.Errorf("in-flight call ended with %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("in-flight call did not end after Close")
		}
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_, err = c.Get(context.Background(), "svc", "/")
	if !errors.Is(err, federation.ErrClosed) {
		t.Errorf("call after Close: %v", err)
	}
	if _, err := c.Metrics(); !errors.Is(err, federation.ErrClosed) {
		t.Errorf("Metrics after Close: %v", err)
	}
}

// osThreads reads the process's OS thread count. It touches no *testing.T, so the sampling
// goroutine may call it (t.Fatal and t.Skip must only be called from the test's goroutine).
func osThreads() (int, error) {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, errors.New("no Threads: line in /proc/self/status")
}

// 1000 goroutines call at once; the OS thread count stays bounded because no call pins a
// thread while it waits.
func TestThousandGoroutinesBoundedThreads(t *testing.T) {
	before, err := osThreads()
	if err != nil {
		t.Skipf("cannot count OS threads: %v", err)
	}
	s := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond) // keep many calls in flight at once
		w.Write([]byte("ok"))
	})
	c := newClient(t, oneClusterConfig([]int{port(t, s)}, "    timeout: { attempt: 20s, total: 30s }"))
	limit := runtime.GOMAXPROCS(0) + federation.WorkerThreads() + 16
	t.Logf("OS threads before: %d", before)
	const goroutines, perGoroutine = 1000, 3
	var failed, maxThreads, samples atomic.Int64
	var sampleErr atomic.Value
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			n, err := osThreads()
			if err != nil {
				sampleErr.Store(err)
				return
			}
			samples.Add(1)
			if int64(n) > maxThreads.Load() {
				maxThreads.Store(int64(n))
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perGoroutine {
				resp, err := c.Get(context.Background(), "svc", "/")
				if err != nil || resp.Status != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	if err, _ := sampleErr.Load().(error); err != nil {
		t.Fatalf("sampling the OS thread count: %v", err)
	}
	if samples.Load() == 0 {
		t.Fatal("the OS thread count was never sampled")
	}
	if failed.Load() != 0 {
		t.Errorf("%d of %d calls failed", failed.Load(), goroutines*perGoroutine)
	}
	if got := maxThreads.Load(); got > int64(limit) {
		t.Errorf("OS threads peaked at %d, above GOMAXPROCS + SDK workers + 16 = %d", got, limit)
	} else {
		t.Logf("OS threads peaked at %d (limit %d)", got, limit)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	s := upstream(t, func(w http.ResponseWriter, r *http.Request) {})
	c := newClient(t, twoClusterConfig([]int{port(t, s)}, []int{closedPort(t)}, ""))
	if _, err := c.Get(context.Background(), "svc", "/"); err != nil {
		t.Fatal(err)
	}
	h, err := c.Health()
	if err != nil {
		t.Fatal(err)
	}
	svc := h.Service("svc")
	if svc == nil || len(svc.Clusters) != 2 || svc.Clusters[0].Cluster != "a" || svc.Clusters[0].Available != 1 {
		t.Fatalf("health: %s", h.JSON)
	}
	metrics, err := c.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(metrics, `service="svc"`) {
		t.Errorf("metrics do not mention the service:\n%s", metrics)
	}
}

func TestNewFromFileAndTOML(t *testing.T) {
	s := upstream(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("toml")) })
	toml := fmt.Sprintf(`[clusters.a.static]
svc-a = [{ address = "127.0.0.1", port = %d }]

[services.svc]
names = { a = "svc-a" }
`, port(t, s))
	path := filepath.Join(t.TempDir(), "federation.toml")
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, open := range map[string]func() (*federation.Client, error){
		"file":   func() (*federation.Client, error) { return federation.NewFromFile(path) },
		"string": func() (*federation.Client, error) { return federation.New(toml, federation.TOML) },
	} {
		c, err := open()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp, err := c.Get(context.Background(), "svc", "/")
		if err != nil || string(resp.Body) != "toml" {
			t.Errorf("%s: %v %v", name, resp, err)
		}
		c.Close()
	}
}
