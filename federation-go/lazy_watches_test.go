package federation_test

import (
	"strings"
	"testing"
	"time"

	federation "github.com/federation/federation-go"
	"github.com/federation/federation-go/federationtest"
)

// `discovery.lazy_watches: true` in the configuration: a service's Consul watches start on its
// first call, so a configured service nobody called has never been answered (issue 23).
func TestLazyWatchesFromTheConfigurationWatchOnlyCalledServices(t *testing.T) {
	sb, err := federationtest.Start(federationtest.Options{CheckInterval: 100 * time.Millisecond, CheckTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	c := newClient(t, sb.ConfigYAML()+"discovery:\n  lazy_watches: true\n")
	waitReady(t, c, "user")
	health, err := c.Health()
	if err != nil {
		t.Fatal(err)
	}
	others := 0
	for _, svc := range health.Services {
		answered := false
		for _, cl := range svc.Clusters {
			answered = answered || cl.LastSuccess != nil
		}
		if svc.Service == "user" && !answered {
			t.Fatalf("the called service was not watched: %+v", svc)
		}
		if svc.Service != "user" {
			others++
			if answered {
				t.Fatalf("%s was watched without a call", svc.Service)
			}
		}
	}
	if others == 0 {
		t.Fatal("the sandbox configures one service only")
	}
}

func TestAWrongLazyWatchesValueNamesTheKey(t *testing.T) {
	config := oneClusterConfig([]int{9}, "") + "discovery:\n  lazy_watches: yes please\n"
	c, err := federation.New(config, federation.YAML)
	if err == nil {
		c.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "discovery.lazy_watches") {
		t.Fatalf("want an error naming discovery.lazy_watches, got %v", err)
	}
}
