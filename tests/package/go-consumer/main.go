// Command consumer is what a Go user of the released module writes: scripts/package-test.sh
// copies it into a new module outside the repository whose go.mod points at the release tree
// (replace), and builds it with no Rust toolchain on PATH. It reads a configuration file (the
// sandbox's, from `federation sandbox --write-config`), calls logical service `user` until it
// answers 200 (30 s deadline: the sandbox's instances pass their first health checks within a
// second or two) and prints the library version, the status and the answering cluster.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	federation "github.com/federation/federation-go"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintf(os.Stderr, "usage: %s <federation.yaml>\n", os.Args[0])
		os.Exit(2)
	}
	client, err := federation.NewFromFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		resp, err := client.Get(ctx, "user", "/api/v1/users/42")
		if err == nil && resp.Status == 200 {
			fmt.Printf("version=%s status=%d cluster=%s\n", federation.Version(), resp.Status, resp.Cluster)
			return
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(os.Stderr, "no 200 from `user` within 30 s:", err, resp)
			os.Exit(1)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
