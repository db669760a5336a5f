package federation_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	federation "github.com/federation/federation-go"
)

// redisServer starts a standalone redis-server on a free loopback port (killed by its pid at
// cleanup) and returns the port; the test is skipped where redis-server is not installed.
func redisServer(t *testing.T) int {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("needs redis-server (apt-get install redis-server)")
	}
	p := closedPort(t)
	cmd := exec.Command("redis-server", "--port", fmt.Sprint(p), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			conn.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %d did not start: %v", p, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// counted is an upstream answering 200 with the path, counting requests per path.
func counted(t *testing.T) (int, func(path string) int) {
	var mu sync.Mutex
	counts := map[string]int{}
	s := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		counts[r.URL.Path]++
		mu.Unlock()
		fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
	})
	return port(t, s), func(path string) int {
		mu.Lock()
		defer mu.Unlock()
		return counts[path]
	}
}

// redisKeys counts the keys matching pattern (one raw RESP `KEYS` command).
func redisKeys(t *testing.T, redisPort int, pattern string) int {
	t.Helper()
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", redisPort))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "*2\r\n$4\r\nKEYS\r\n$%d\r\n%s\r\n", len(pattern), pattern)
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "*") {
		t.Fatalf("KEYS reply %q: %v", line, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func l2Config(upstreamPort, redisPort int, extra string) string {
	return oneClusterConfig([]int{upstreamPort}, fmt.Sprintf(
		"    cache: { ttl: 60s%s, l2: { address: 127.0.0.1:%d, timeout: 250ms } }\n", extra, redisPort))
}

func tierReady(t *testing.T, c *federation.Client) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h, err := c.Health()
		if err != nil {
			t.Fatal(err)
		}
		if l2 := h.Service("svc").CacheL2; l2 != nil && l2.Connected && l2.Subscribed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tier not ready: %s", h.JSON)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func cacheOf(t *testing.T, c *federation.Client, path string) federation.CacheStatus {
	t.Helper()
	r, err := c.Get(t.Context(), "svc", path)
	if err != nil {
		t.Fatal(err)
	}
	return r.Cache
}

func TestL2SharesValuesAndInvalidationsBetweenClients(t *testing.T) {
	up, requests := counted(t)
	redisPort := redisServer(t)
	cfg := l2Config(up, redisPort, "")
	a, b := newClient(t, cfg), newClient(t, cfg)
	tierReady(t, a)
	tierReady(t, b)
	if got := cacheOf(t, a, "/users/1"); got != federation.CacheMiss {
		t.Fatalf("first call: %v", got)
	}
	// The store runs in the background: b reads it once it landed.
	deadline := time.Now().Add(5 * time.Second)
	for redisKeys(t, redisPort, "*/users/1 *") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("value never shared through Redis")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := cacheOf(t, b, "/users/1"); got != federation.CacheHit {
		t.Fatalf("b: %v", got)
	}
	before := requests("/users/1")
	if ok, err := a.InvalidatePrefix("svc", "/users/"); err != nil || !ok {
		t.Fatalf("InvalidatePrefix: %v %v", ok, err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for cacheOf(t, b, "/users/1") == federation.CacheHit {
		if time.Now().After(deadline) {
			t.Fatal("b kept serving the invalidated value")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if requests("/users/1") <= before {
		t.Fatal("b did not fetch again")
	}
	h, _ := b.Health()
	if l2 := h.Service("svc").CacheL2; l2.InvalidationsReceived != 1 || l2.Hits == 0 {
		t.Fatalf("health: %s", h.JSON)
	}
	if ok, err := a.Invalidate("nope", "/x"); err != nil || ok {
		t.Fatalf("unknown service: %v %v", ok, err)
	}
}

func TestWarmAndEntityInvalidation(t *testing.T) {
	up, requests := counted(t)
	cfg := l2Config(up, redisServer(t),
		`, warm: [/config], warm_concurrency: 2, entities: { user: ["/users/{id}"] }`)
	c := newClient(t, cfg)
	deadline := time.Now().Add(10 * time.Second)
	for {
		h, err := c.Health()
		if err != nil {
			t.Fatal(err)
		}
		if w := h.Service("svc").CacheWarm; w != nil && w.Fetched == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("configured warm-up never finished: %s", h.JSON)
		}
		time.Sleep(10 * time.Millisecond)
	}
	report, err := c.Warm("svc", []string{"/users/7", "/users/8"})
	if err != nil || report != (federation.WarmReport{Fetched: 2}) {
		t.Fatalf("Warm: %+v %v", report, err)
	}
	for _, p := range []string{"/config", "/users/7", "/users/8"} {
		if got := cacheOf(t, c, p); got != federation.CacheHit {
			t.Fatalf("%s after warm-up: %v", p, got)
		}
	}
	if n, err := c.InvalidateEntity("user", "7"); err != nil || n != 1 {
		t.Fatalf("InvalidateEntity: %d %v", n, err)
	}
	if got := cacheOf(t, c, "/users/7"); got != federation.CacheMiss {
		t.Fatalf("/users/7 after entity invalidation: %v", got)
	}
	if got := cacheOf(t, c, "/users/8"); got != federation.CacheHit {
		t.Fatalf("/users/8 untouched: %v", got)
	}
	if requests("/users/7") != 2 {
		t.Fatalf("upstream saw /users/7 %d times", requests("/users/7"))
	}
	if _, err := c.Warm("nope", []string{"/x"}); err == nil || !strings.Contains(err.Error(), "unknown service") {
		t.Fatalf("Warm of an unknown service: %v", err)
	}
}
