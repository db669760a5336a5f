package federation_test

import (
	"context"
	"fmt"

	federation "github.com/federation/federation-go"
)

// A zervigo service publishes its users' changes and applies looma's (compiled, not run: it
// needs a Kafka broker; see sync_test.go for runnable tests).
func ExampleDataSync() {
	ctx := context.Background()
	config := `
clusters:
  zervigo: { static: { user-service: [{ address: 127.0.0.1, port: 8081 }] } }
  looma: { static: { looma-user-api: [{ address: 127.0.0.1, port: 9001 }] } }
sync:
  clusters:
    zervigo: { bootstrap_servers: "127.0.0.1:9092" }
    looma: { bootstrap_servers: "127.0.0.1:9092" }
  entities:
    user: {}
`
	sync, err := federation.NewDataSync(ctx, config, federation.YAML, "zervigo")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sync.Close()

	users := federation.NewMemoryTarget() // the service's own store
	sub, err := sync.Subscribe(ctx, users)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Stop()

	published, err := sync.Publish(ctx, federation.Change{
		EntityType: "user", EntityID: "42", Operation: federation.Update,
		Data: map[string]any{"name": "Ada"},
		Base: users.Get("user", "42"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	users.Put("user", "42", published.State)
	status, _ := sync.Status("user", "42")
	fmt.Println(status.Overall) // "pending" until looma applied it, then "completed"
}
