package federation_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	federation "github.com/federation/federation-go"
)

// exampleUpstream starts a loopback instance and returns its port.
func exampleUpstream(h http.HandlerFunc) (*httptest.Server, int) {
	s := httptest.NewServer(h)
	return s, s.Listener.Addr().(*net.TCPAddr).Port
}

func Example() {
	s, port := exampleUpstream(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"id":42}`)
	})
	defer s.Close()

	config := fmt.Sprintf(`
clusters:
  zervigo:
    static:
      user-service: [{ id: user-1, address: 127.0.0.1, port: %d }]
services:
  user:
    names: { zervigo: user-service }
`, port)
	client, err := federation.New(config, federation.YAML)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()

	resp, err := client.Get(context.Background(), "user", "/api/v1/users/42")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Status, resp.Cluster, resp.Instance, string(resp.Body))
	// Output: 200 zervigo user-1 {"id":42}
}

func ExampleClient_Do() {
	s, port := exampleUpstream(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "%s %s", r.Method, r.Header.Get("Content-Type"))
	})
	defer s.Close()
	client, err := federation.New(fmt.Sprintf(`{
  "clusters": { "looma": { "static": { "resume-api": [ { "address": "127.0.0.1", "port": %d } ] } } },
  "services": { "resume": { "names": { "looma": "resume-api" } } }
}`, port), federation.JSON)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	idempotent := true // safe to retry: the upstream deduplicates by key
	resp, err := client.Do(ctx, "resume", &federation.Request{
		Method:     "PUT",
		Path:       "/resumes/7",
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       []byte(`{"title":"engineer"}`),
		Idempotent: &idempotent,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Status, string(resp.Body))
	// Output: 201 PUT application/json
}

func ExampleError() {
	client, err := federation.New(`
clusters:
  zervigo: { static: { user-service: [] } }
services:
  user: { names: { zervigo: user-service } }
`, federation.YAML)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()

	_, err = client.Get(context.Background(), "user", "/")
	var ferr *federation.Error
	switch {
	case errors.Is(err, federation.ErrNoHealthyInstance):
		errors.As(err, &ferr)
		fmt.Println("fallback:", ferr.Kind, "attempts:", ferr.Attempts)
	case err != nil:
		fmt.Println("other error:", err)
	}
	// Output: fallback: no_healthy_instance attempts: 0
}
