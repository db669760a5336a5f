package federation_test

// G6 (docs/BENCHMARKS.md): the SDK against what a Go team would write instead — net/http with a
// sony/gobreaker breaker per instance and round-robin over the same three upstream instances —
// in one run. Following the harness rules, the upstreams are the testkit's hyper instances
// (discovered by the SDK through the Consul double), run by `federation sandbox` in a process
// of their own; the two variants run interleaved (the order alternates per repetition), each
// repetition a closed loop of a fixed duration after a warm-up, at concurrency 1, 64 and 1000;
// the output is a Markdown table of p50/p99/throughput per variant and repetition plus the
// median of the per-repetition ratios, and the peak OS thread count while the SDK ran.
//
//	cargo build --release -p federation-ffi -p federation-cli
//	go test -tags federation_release -run '^$' -bench G6 -benchtime 1x -timeout 30m
//
// Environment: G6_SECONDS (per repetition and variant, default 3), G6_REPS (default 10; many
// short interleaved pairs: this machine's speed drifts over seconds, and a ratio of two
// adjacent runs cancels the drift better than one of two long ones),
// G6_LEVELS (default "1,64,1000"), G6_WARMUP_SECONDS (per level, default 1), FEDERATION_CLI
// (the federation binary; default ../target/release/federation, else the debug build).
// Without the tag the debug build of the library is measured (slower; only for smoke runs).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	federation "github.com/federation/federation-go"
	"github.com/sony/gobreaker/v2"
)

// benchUpstreams starts n instances answering a small JSON body.
func benchUpstreams(b *testing.B, n int) []int {
	ports := make([]int, n)
	for i := range n {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"id":42,"name":"user"}`))
		}))
		b.Cleanup(s.Close)
		ports[i] = port(&testing.T{}, s)
	}
	return ports
}

// sample is the outcome of one closed-loop run of one variant.
type sample struct {
	calls, failed int64
	elapsed       time.Duration
	p50, p99      time.Duration
	peakThreads   int
	cpu           time.Duration // process CPU time (user + system) during the run
	upstreamCPU   time.Duration // the upstream process's CPU time during the run (G6)
}

// upstreamPID is the process of the G6 upstreams (0: none, or in this process).
var upstreamPID int

// processCPU is the CPU time (user + system) of process pid so far, from /proc (0 if unknown).
// Clock ticks are taken as 100 per second, the Linux USER_HZ.
func processCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may contain spaces) start at state (field 3).
	text := string(data)
	fields := strings.Fields(text[strings.LastIndexByte(text, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// cpuTime is the process's CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (s sample) throughput() float64 { return float64(s.calls) / s.elapsed.Seconds() }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envLevels() []int {
	raw := os.Getenv("G6_LEVELS")
	if raw == "" {
		return []int{1, 64, 1000}
	}
	var levels []int
	for f := range strings.SplitSeq(raw, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			levels = append(levels, n)
		}
	}
	return levels
}

// threadCount reads the process's OS thread count (0 when unknown).
func threadCount() int {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// closedLoop runs call from `concurrency` goroutines until d has passed.
func closedLoop(concurrency int, d time.Duration, call func() error) sample {
	var wg sync.WaitGroup
	var failed atomic.Int64
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if n := int64(threadCount()); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	all := make([][]time.Duration, concurrency)
	cpu0, upstream0 := cpuTime(), processCPU(upstreamPID)
	start := time.Now()
	deadline := start.Add(d)
	for g := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			for {
				t0 := time.Now()
				if t0.After(deadline) {
					break
				}
				if err := call(); err != nil {
					failed.Add(1)
				}
				local = append(local, time.Since(t0))
			}
			all[g] = local
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	upstreamCPU := processCPU(upstreamPID) - upstream0
	close(stop)
	<-sampled
	lat := slices.Concat(all...)
	slices.Sort(lat)
	s := sample{calls: int64(len(lat)), failed: failed.Load(), elapsed: elapsed, peakThreads: int(peak.Load()), cpu: cpu,
		upstreamCPU: upstreamCPU}
	if len(lat) > 0 {
		s.p50 = lat[len(lat)/2]
		s.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return s
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Microsecond)) }

// sandboxProcess starts `federation sandbox --json --no-echo` (the testkit's hyper instances
// behind two Consul doubles, in a process of its own, as the harness rules ask) and returns
// the client configuration for it and the URLs of zervigo's user-service instances, which the
// SDK's logical service "user" prefers. The binary is $FEDERATION_CLI, else the release build,
// else the debug build.
func sandboxProcess(b *testing.B) (config string, urls []string) {
	bin := os.Getenv("FEDERATION_CLI")
	for _, candidate := range []string{"../target/release/federation", "../target/debug/federation"} {
		if bin != "" {
			break
		}
		if _, err := os.Stat(candidate); err == nil {
			bin = candidate
		}
	}
	if bin == "" {
		b.Fatal("no federation binary: cargo build --release -p federation-cli, or set FEDERATION_CLI")
	}
	configPath := filepath.Join(b.TempDir(), "sandbox.yaml")
	cmd := exec.Command(bin, "sandbox", "--json", "--no-echo", "--write-config", configPath)
	cmd.Stderr = io.Discard
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	upstreamPID = cmd.Process.Pid
	b.Cleanup(func() {
		upstreamPID = 0
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	var addresses struct {
		Clusters []struct {
			Cluster  string `json:"cluster"`
			Services []struct {
				ConsulService string   `json:"consul_service"`
				Instances     []string `json:"instances"`
			} `json:"services"`
		} `json:"clusters"`
	}
	if err := json.NewDecoder(stdout).Decode(&addresses); err != nil {
		b.Fatalf("reading the sandbox's addresses: %v", err)
	}
	for _, c := range addresses.Clusters {
		for _, s := range c.Services {
			if c.Cluster == "zervigo" && s.ConsulService == "user-service" {
				urls = s.Instances
			}
		}
	}
	text, err := os.ReadFile(configPath)
	if err != nil || len(urls) == 0 {
		b.Fatalf("sandbox gave no configuration or no user-service instances: %v", err)
	}
	return string(text), urls
}

func BenchmarkG6(b *testing.B) {
	config, bases := sandboxProcess(b)
	client, err := federation.New(config, federation.YAML)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := client.Get(ctx, "user", "/api/v1/users/42")
		if err == nil && resp.Status == 200 && resp.Cluster == "zervigo" {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the SDK never reached zervigo's user-service: %v %+v", err, resp)
		}
		time.Sleep(20 * time.Millisecond)
	}

	transport := &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 0}
	httpClient := &http.Client{Transport: transport, Timeout: 3 * time.Second}
	urls := make([]string, len(bases))
	breakers := make([]*gobreaker.CircuitBreaker[[]byte], len(bases))
	for i, base := range bases {
		urls[i] = base + "/api/v1/users/42"
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
	sdk := func() error {
		resp, err := client.Get(ctx, "user", "/api/v1/users/42")
		if err == nil && resp.Status != 200 {
			err = fmt.Errorf("status %d", resp.Status)
		}
		return err
	}
	variants := []struct {
		name string
		call func() error
	}{{"sdk", sdk}, {"nethttp+gobreaker", baseline}}
	if only := os.Getenv("G6_ONLY"); only != "" { // profiling one variant; no ratios
		for _, v := range variants {
			if v.name == only {
				s := closedLoop(envInt("G6_LEVELS", 1), time.Duration(envInt("G6_SECONDS", 5))*time.Second, v.call)
				fmt.Printf("%s: %.0f req/s, p50 %s µs, p99 %s µs, CPU %.1f µs/call, upstream CPU %.1f µs/call (%.0f %%)\n",
					only, s.throughput(), us(s.p50), us(s.p99), float64(s.cpu.Microseconds())/float64(max(s.calls, 1)),
					float64(s.upstreamCPU.Microseconds())/float64(max(s.calls, 1)), 100*s.upstreamCPU.Seconds()/s.elapsed.Seconds())
			}
		}
		return
	}

	d := time.Duration(envInt("G6_SECONDS", 3)) * time.Second
	warm := time.Duration(envInt("G6_WARMUP_SECONDS", 1)) * time.Second
	reps := envInt("G6_REPS", 10)
	levels := envLevels()
	limit := runtime.GOMAXPROCS(0) + federation.WorkerThreads() + 16

	var out strings.Builder
	fmt.Fprintf(&out, "\nG6 %s, GOMAXPROCS %d, SDK threads %d, %d reps x %s per variant\n\n",
		time.Now().UTC().Format(time.RFC3339), runtime.GOMAXPROCS(0), federation.WorkerThreads(), reps, d)
	out.WriteString("| c | rep | variant | calls | failed | req/s | p50 µs | p99 µs | CPU % | CPU µs/call | upstream CPU % | upstream CPU µs/call | peak threads |\n")
	out.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	var summary strings.Builder
	summary.WriteString("\n| c | sdk/base throughput (median) | sdk/base p50 | sdk/base p99 | per-rep throughput ratios | per-rep p50 ratios |\n")
	summary.WriteString("|---|---|---|---|---|---|\n")
	peakSDK := 0
	for _, c := range levels {
		for _, v := range variants {
			closedLoop(c, warm, v.call)
		}
		var tput, p50, p99 []float64
		for rep := range reps {
			results := make(map[string]sample, 2)
			order := []int{0, 1}
			if rep%2 == 1 {
				order = []int{1, 0}
			}
			for _, i := range order {
				v := variants[i]
				s := closedLoop(c, d, v.call)
				results[v.name] = s
				if s.failed > 0 {
					b.Errorf("c=%d %s: %d calls failed", c, v.name, s.failed)
				}
				if v.name == "sdk" {
					peakSDK = max(peakSDK, s.peakThreads)
				}
				fmt.Fprintf(&out, "| %d | %d | %s | %d | %d | %.0f | %s | %s | %.0f | %.1f | %.0f | %.1f | %d |\n", c, rep+1, v.name,
					s.calls, s.failed, s.throughput(), us(s.p50), us(s.p99),
					100*s.cpu.Seconds()/s.elapsed.Seconds(), float64(s.cpu.Microseconds())/float64(max(s.calls, 1)),
					100*s.upstreamCPU.Seconds()/s.elapsed.Seconds(), float64(s.upstreamCPU.Microseconds())/float64(max(s.calls, 1)),
					s.peakThreads)
			}
			a, base := results["sdk"], results["nethttp+gobreaker"]
			tput = append(tput, a.throughput()/base.throughput())
			p50 = append(p50, float64(a.p50)/float64(base.p50))
			p99 = append(p99, float64(a.p99)/float64(base.p99))
		}
		fmt.Fprintf(&summary, "| %d | %.2fx | %.2fx | %.2fx | %s | %s |\n", c, median(tput), median(p50), median(p99),
			ratios(tput), ratios(p50))
		b.ReportMetric(median(tput), fmt.Sprintf("c%d-tput-ratio", c))
		b.ReportMetric(median(p50), fmt.Sprintf("c%d-p50-ratio", c))
	}
	fmt.Fprintf(&summary, "\nOS threads: peak %d during the SDK runs (limit GOMAXPROCS + SDK threads + 16 = %d)\n", peakSDK, limit)
	b.ReportMetric(float64(peakSDK), "peak-threads")
	fmt.Println(out.String() + summary.String())
	if peakSDK > limit {
		b.Errorf("OS threads peaked at %d, above %d", peakSDK, limit)
	}
	b.ReportMetric(0, "ns/op") // one b.N iteration runs the whole schedule; ns/op means nothing
}

func ratios(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(parts, " ")
}

// BenchmarkBridge measures the C ABI round trip without upstream I/O: a call answered from the
// SDK's cache (after one miss) and a call failing fast (unknown service). ns/op at c=1 is the
// per-call cost of the bridge (Go -> runtime worker -> completion -> goroutine).
func BenchmarkBridge(b *testing.B) {
	ports := benchUpstreams(b, 1)
	client, err := federation.New(oneClusterConfig(ports, "    cache: { ttl: 1h }"), federation.YAML)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	if _, err := client.Get(ctx, "svc", "/cached"); err != nil {
		b.Fatal(err)
	}
	for _, c := range []int{1, 64} {
		b.Run(fmt.Sprintf("hit/c=%d", c), func(b *testing.B) {
			b.SetParallelism(max(1, c/runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get(ctx, "svc", "/cached")
					if err != nil || resp.Cache != federation.CacheHit {
						b.Errorf("%v %v", resp, err)
						return
					}
				}
			})
		})
		b.Run(fmt.Sprintf("unknown-service/c=%d", c), func(b *testing.B) {
			b.SetParallelism(max(1, c/runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := client.Get(ctx, "nosuch", "/"); err == nil {
						b.Error("no error")
						return
					}
				}
			})
		})
	}
}
