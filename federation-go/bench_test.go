package federation_test

// G6 (docs/BENCHMARKS.md): the SDK against what a Go team would write instead — net/http with a
// sony/gobreaker breaker per instance and round-robin over the same upstream instances — in one
// run, at concurrency 1, 64 and 1000. Reports ns/op (throughput) and p50-µs.
//
//	cargo build --release -p federation-ffi
//	go test -tags federation_release -run '^$' -bench G6 -benchtime 5s
//
// Without the tag the debug build of the library is measured (slower; only for smoke runs).

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	federation "github.com/federation/federation-go"
	"github.com/sony/gobreaker/v2"
)

// benchUpstreams starts n instances answering a small JSON body.
func benchUpstreams(b *testing.B, n int) ([]*httptest.Server, []int) {
	servers := make([]*httptest.Server, n)
	ports := make([]int, n)
	for i := range n {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"id":42,"name":"user"}`))
		}))
		b.Cleanup(s.Close)
		servers[i] = s
		ports[i] = port(&testing.T{}, s)
	}
	return servers, ports
}

// latencies collects per-call durations from parallel goroutines.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d...)
	l.mu.Unlock()
}

func (l *latencies) p50() float64 {
	if len(l.all) == 0 {
		return 0
	}
	slices.Sort(l.all)
	return float64(l.all[len(l.all)/2].Microseconds())
}

// runParallel runs call from `concurrency` goroutines for b.N calls in total.
func runParallel(b *testing.B, concurrency int, call func() error) {
	var lat latencies
	var failed atomic.Int64
	if concurrency == 1 {
		local := make([]time.Duration, 0, b.N)
		for b.Loop() {
			start := time.Now()
			if err := call(); err != nil {
				failed.Add(1)
			}
			local = append(local, time.Since(start))
		}
		lat.add(local)
		b.ReportMetric(lat.p50(), "p50-µs")
		if failed.Load() > 0 {
			b.Errorf("%d calls failed", failed.Load())
		}
		return
	}
	b.SetParallelism(max(1, concurrency/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			start := time.Now()
			if err := call(); err != nil {
				failed.Add(1)
			}
			local = append(local, time.Since(start))
		}
		lat.add(local)
	})
	b.StopTimer()
	b.ReportMetric(lat.p50(), "p50-µs")
	if failed.Load() > 0 {
		b.Errorf("%d calls failed", failed.Load())
	}
}

func BenchmarkG6(b *testing.B) {
	_, ports := benchUpstreams(b, 3)
	client, err := federation.New(oneClusterConfig(ports, ""), federation.YAML)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()

	transport := &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 0}
	httpClient := &http.Client{Transport: transport, Timeout: 3 * time.Second}
	urls := make([]string, len(ports))
	breakers := make([]*gobreaker.CircuitBreaker[[]byte], len(ports))
	for i, p := range ports {
		urls[i] = fmt.Sprintf("http://127.0.0.1:%d/api/v1/users/42", p)
		breakers[i] = gobreaker.NewCircuitBreaker[[]byte](gobreaker.Settings{Name: urls[i]})
	}
	var next atomic.Uint64
	baseline := func() error {
		i := next.Add(1) % uint64(len(urls))
		_, err := breakers[i].Execute(func() ([]byte, error) {
			resp, err := httpClient.Get(urls[i])
			if err != nil {
				return nil, err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err == nil && resp.StatusCode >= 500 {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			return body, err
		})
		return err
	}
	ctx := context.Background()
	sdk := func() error {
		resp, err := client.Get(ctx, "svc", "/api/v1/users/42")
		if err == nil && resp.Status != 200 {
			err = fmt.Errorf("status %d", resp.Status)
		}
		return err
	}
	for _, c := range []int{1, 64, 1000} {
		b.Run(fmt.Sprintf("c=%d/sdk", c), func(b *testing.B) { runParallel(b, c, sdk) })
		b.Run(fmt.Sprintf("c=%d/nethttp+gobreaker", c), func(b *testing.B) { runParallel(b, c, baseline) })
	}
}
