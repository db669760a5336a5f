// Command zervigo_calls_ai asks ai-service for inferences the way a Zervigo tool would: the
// model version chosen by instance tag (model=v2 or model=v3), inference POSTs cached by body,
// and a fallback to v2 when no v3 instance can take the call.
//
// The tag filter belongs to a logical service's configuration, so the client knows two
// services over the same Consul service: `ai` (tags [model=v2]) and `ai-v3` (tags [model=v3]).
//
//	go run ./zervigo_calls_ai --sandbox
//	go run ./zervigo_calls_ai --config federation.yaml   # needs `ai` and `ai-v3`
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	federation "github.com/federation/federation-go"
	"github.com/federation/federation-go/federationtest"
)

// aiV3 is the v3 service added to the sandbox's configuration (services is its last section).
const aiV3 = `  ai-v3:
    prefer: looma
    names: { looma: ai-service }
    tags: ["model=v3"]
    cache: { ttl: 30s, methods: [GET, POST] }
`

// infer asks model ("v2" or "v3"). The model is in the body too, so each model's answers have
// their own cache entries.
func infer(ctx context.Context, client *federation.Client, model, prompt string) (*federation.Response, error) {
	svc := "ai"
	if model == "v3" {
		svc = "ai-v3"
	}
	body, err := json.Marshal(map[string]string{"model": model, "prompt": prompt})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := client.Post(ctx, svc, "/v1/inference", "application/json", body)
	if err == nil && resp.Status >= 400 {
		err = fmt.Errorf("%s answered %d", svc, resp.Status)
	}
	return resp, err
}

// inferPreferV3 asks v3 and falls back to v2 only when nothing was sent to v3.
func inferPreferV3(ctx context.Context, client *federation.Client, prompt string) (string, *federation.Response, error) {
	resp, err := infer(ctx, client, "v3", prompt)
	if errors.Is(err, federation.ErrNoHealthyInstance) || errors.Is(err, federation.ErrCircuitOpen) {
		resp, err = infer(ctx, client, "v2", prompt)
		return "v2", resp, err
	}
	return "v3", resp, err
}

func show(label string, r *federation.Response) *federation.Response {
	fmt.Printf("%-34s %d from %s/%s cache=%s attempts=%d\n", label, r.Status, r.Cluster, r.Instance, r.Cache, r.Attempts)
	return r
}

func run(ctx context.Context, client *federation.Client, sb *federationtest.Sandbox) error {
	time.Sleep(200 * time.Millisecond) // let discovery answer once (a real service starts earlier)
	prompt := "summarise resume 7 for a backend role"
	var rs []*federation.Response
	for _, model := range []string{"v2", "v2", "v3"} {
		r, err := infer(ctx, client, model, prompt)
		if err != nil {
			return fmt.Errorf("%s inference: %w", model, err)
		}
		rs = append(rs, show(model+" inference", r))
	}
	if sb == nil {
		return nil
	}
	if rs[0].Cache != federation.CacheMiss || rs[1].Cache != federation.CacheHit || !strings.Contains(rs[2].Instance, "-v3-") {
		return errors.New("expected a miss, a hit, then a v3 instance")
	}
	fmt.Println("-- killing ai-service-v3-1 (the only v3 instance)")
	const v3Index = 3 // v2 instances first, then the v3 one
	if err := sb.Kill("looma", "ai-service", v3Index); err != nil {
		return err
	}
	if err := sb.WaitPassing("looma", "ai-service", 3, 20*time.Second); err != nil {
		return err
	}
	// The client learns of the dead instance through Consul; until then a call may still try it
	// and fail to connect, which is not a fallback case, so retry briefly.
	deadline := time.Now().Add(10 * time.Second)
	for {
		model, r, err := inferPreferV3(ctx, client, "draft an offer letter")
		if err == nil {
			show("v3 wanted, answered by "+model, r)
			if model != "v2" {
				return errors.New("expected the fallback to v2")
			}
			return sb.Restart("looma", "ai-service", v3Index)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
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
		if client, err = federation.New(sb.ConfigYAML()+aiV3, federation.YAML); err != nil {
			return err
		}
	} else if client, err = federation.NewFromFile(configPath); err != nil {
		return err
	}
	defer client.Close()
	return run(context.Background(), client, sb)
}
