package federation_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	federation "github.com/federation/federation-go"
)

// upstream is a loopback HTTP server standing in for one service instance.
func upstream(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// hostPort splits a test server's address.
func hostPort(t *testing.T, s *httptest.Server) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(s.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return host, p
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// instances renders a YAML flow list of static instances on 127.0.0.1.
func instances(ports ...int) string {
	items := make([]string, len(ports))
	for i, p := range ports {
		items[i] = fmt.Sprintf("{ id: i%d, address: 127.0.0.1, port: %d }", i, p)
	}
	return "[" + strings.Join(items, ", ") + "]"
}

// twoClusterConfig has logical service "svc" in clusters a (preferred) and b, with static
// instances, plus policy YAML for the service (indented under it).
func twoClusterConfig(a, b []int, policy string) string {
	return fmt.Sprintf(`clusters:
  a:
    static:
      svc-a: %s
  b:
    static:
      svc-b: %s
services:
  svc:
    prefer: a
    names: { a: svc-a, b: svc-b }
%s`, instances(a...), instances(b...), policy)
}

// oneClusterConfig has logical service "svc" with static instances in cluster a only.
func oneClusterConfig(ports []int, policy string) string {
	return fmt.Sprintf(`clusters:
  a:
    static:
      svc-a: %s
services:
  svc:
    names: { a: svc-a }
%s`, instances(ports...), policy)
}

func newClient(t *testing.T, config string) *federation.Client {
	t.Helper()
	c, err := federation.New(config, federation.YAML)
	if err != nil {
		t.Fatalf("New: %v\n%s", err, config)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func port(t *testing.T, s *httptest.Server) int {
	_, p := hostPort(t, s)
	return p
}
