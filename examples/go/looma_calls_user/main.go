// Command looma_calls_user reads user profiles from user-service the way a Looma service would:
// cached, with failover from zervigo's user-service to looma's looma-user-api and back.
//
//	go run ./looma_calls_user --sandbox              # embedded two-cluster sandbox
//	go run ./looma_calls_user --config federation.yaml
//
// With --sandbox it kills zervigo's instances to show the failover and exits 1 if what it
// narrates did not happen.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	federation "github.com/federation/federation-go"
	"github.com/federation/federation-go/federationtest"
)

const service = "user"

// withPolicies turns on what this example shows in the sandbox's YAML: profiles cached 30 s
// (served up to 60 s stale when both clusters fail) and a 1 s fail-back dwell (default 5 s).
func withPolicies(yaml string) (string, error) {
	const entry = "\n  user:\n"
	if !strings.Contains(yaml, entry) {
		return "", errors.New("sandbox configuration has no `user` service")
	}
	policies := entry + "    cache: { ttl: 30s, stale_if_error: 60s }\n    failover: { dwell: 1s }\n"
	return strings.Replace(yaml, entry, policies, 1), nil
}

func fetchProfile(ctx context.Context, client *federation.Client, id int) (*federation.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := client.Do(ctx, service, &federation.Request{
		Path:   fmt.Sprintf("/api/v1/users/%d", id),
		Header: map[string][]string{"X-Request-Source": {"looma-api-gateway"}},
	})
	if err == nil && resp.Status >= 400 {
		err = fmt.Errorf("user-service answered %d", resp.Status)
	}
	return resp, err
}

func show(label string, r *federation.Response) *federation.Response {
	fmt.Printf("%-34s %d from %s/%s cache=%s attempts=%d\n", label, r.Status, r.Cluster, r.Instance, r.Cache, r.Attempts)
	return r
}

// available is how many instances the client may pick in cluster now (discovery + breakers).
func available(client *federation.Client, cluster string) int {
	h, err := client.Health()
	if err != nil || h.Service(service) == nil {
		return -1
	}
	for _, c := range h.Service(service).Clusters {
		if c.Cluster == cluster {
			return c.Available
		}
	}
	return -1
}

// waitFor polls cond every 20 ms until it holds or timeout passes.
func waitFor(cond func() bool, what string, timeout time.Duration) error {
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %s", what)
		}
	}
	return nil
}

// discovered holds once every cluster's registry answered at least once.
func discovered(client *federation.Client) bool {
	h, err := client.Health()
	if err != nil || h.Service(service) == nil {
		return false
	}
	for _, c := range h.Service(service).Clusters {
		if c.LastSuccess == nil && c.LastError == nil {
			return false
		}
	}
	return true
}

func run(ctx context.Context, client *federation.Client, sb *federationtest.Sandbox) error {
	if err := waitFor(func() bool { return discovered(client) }, "discovery", 10*time.Second); err != nil {
		fmt.Println("warning:", err, "- calling anyway")
	}
	step := func(label string, id int) (*federation.Response, error) {
		r, err := fetchProfile(ctx, client, id)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
		return show(label, r), nil
	}
	cold, err := step("profile lookup (cold)", 42)
	if err != nil {
		return err
	}
	cached, err := step("profile lookup (cached)", 42)
	if err != nil || sb == nil {
		return err
	}
	if cold.Cluster != "zervigo" || cached.Cache != federation.CacheHit {
		return errors.New("expected a read from zervigo, then a cache hit")
	}

	fmt.Println("-- killing every zervigo user-service instance")
	if err := sb.Kill("zervigo", "user-service", federationtest.All); err != nil {
		return err
	}
	down, err := step("zervigo down", 200)
	if err != nil {
		return err
	}
	if down.Cluster != "looma" {
		return errors.New("expected the call to fail over to looma")
	}
	if err := waitFor(func() bool { return available(client, "zervigo") == 0 }, "zervigo seen down", 20*time.Second); err != nil {
		return err
	}
	if known, err := step("zervigo down, Consul knows", 201); err != nil || known.Attempts != 1 {
		return errors.Join(err, errors.New("expected one attempt, straight to looma"))
	}

	fmt.Println("-- restarting them")
	restarted := time.Now()
	if err := sb.Restart("zervigo", "user-service", federationtest.All); err != nil {
		return err
	}
	for id := 300; ; id++ {
		r, err := step("after restart", id)
		if err != nil {
			return err
		}
		if r.Cluster == "zervigo" {
			break
		}
		if time.Since(restarted) > 25*time.Second {
			return errors.New("traffic did not return to zervigo within 25 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Printf("-- back in zervigo %.1f s after the restart\n", time.Since(restarted).Seconds())
	return nil
}

func main() {
	config := flag.String("config", "", "client configuration file (YAML, TOML or JSON)")
	sandbox := flag.Bool("sandbox", false, "start the embedded two-cluster sandbox")
	flag.Parse()
	if (*config == "") == !*sandbox {
		fmt.Fprintln(os.Stderr, "give exactly one of --config PATH or --sandbox")
		os.Exit(2)
	}
	if err := start(*config, *sandbox); err != nil {
		if errors.Is(err, federation.ErrNoHealthyInstance) {
			fmt.Fprintln(os.Stderr, "no user-service instance anywhere: serve a degraded page")
		}
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func start(configPath string, useSandbox bool) error {
	var (
		client *federation.Client
		sb     *federationtest.Sandbox
		err    error
	)
	if useSandbox {
		if sb, err = federationtest.Start(federationtest.Options{}); err != nil {
			return err
		}
		defer sb.Close()
		yaml, err := withPolicies(sb.ConfigYAML())
		if err != nil {
			return err
		}
		client, err = federation.New(yaml, federation.YAML)
		if err != nil {
			return err
		}
	} else if client, err = federation.NewFromFile(configPath); err != nil {
		return err
	}
	defer client.Close()
	return run(context.Background(), client, sb)
}
