package federationtest

/*
#include <stdlib.h>
#include "federation.h"
*/
import "C"

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// Kafka is a real Apache Kafka broker (KRaft, single node, free loopback ports) run by the
// testkit, the same recipe as the Rust and Python sync tests: jars cached under
// target/kafka-jars (scripts/kafka-jars.sh), stopped and killed by its own pid, its JVM killed
// when Close runs (and by a watchdog if the test process dies). Close it when done.
type Kafka struct {
	mu       sync.Mutex
	ptr      *C.federation_kafka_t
	external string
}

// KafkaEnv names the variable that points tests at a broker started elsewhere (host:port).
const KafkaEnv = "FEDERATION_KAFKA_BOOTSTRAP"

// KafkaFromEnv is the broker at $FEDERATION_KAFKA_BOOTSTRAP, started by another process (for
// example a Python test that runs a Go test program against its broker), or nil when unset.
// Stop, Kill and Restart refuse on it; Close does nothing.
func KafkaFromEnv() *Kafka {
	if servers := os.Getenv(KafkaEnv); servers != "" {
		return &Kafka{external: servers}
	}
	return nil
}

// KafkaSkipReason is "" when this machine can run a broker, else the message to skip with
// (no Java). Under CI (CI set) a missing Java is an error instead: CI must run these tests.
func KafkaSkipReason() (string, error) {
	var out *C.federation_string_t
	if err := check(C.federation_kafka_skip_reason(&out)); err != nil {
		return "", err
	}
	if out == nil {
		return "", nil
	}
	defer C.federation_string_free(out)
	return C.GoString(C.federation_string_data(out, nil)), nil
}

// StartKafka starts a broker and waits until it accepts a topic (seconds; fetching the jars
// the first time takes longer).
func StartKafka() (*Kafka, error) {
	var ptr *C.federation_kafka_t
	if err := check(C.federation_kafka_start(&ptr)); err != nil {
		return nil, err
	}
	return &Kafka{ptr: ptr}, nil
}

// KafkaForTest starts a broker for t, skipping t with the testkit's reason when there is no
// Java (failing under CI), and closes it when t ends; with $FEDERATION_KAFKA_BOOTSTRAP set it
// uses that broker instead (KafkaFromEnv).
func KafkaForTest(t testing.TB) *Kafka {
	t.Helper()
	if k := KafkaFromEnv(); k != nil {
		return k
	}
	reason, err := KafkaSkipReason()
	if err != nil {
		t.Fatal(err)
	}
	if reason != "" {
		t.Skip(reason)
	}
	k, err := StartKafka()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	return k
}

func (k *Kafka) do(f func(ptr *C.federation_kafka_t) *C.federation_error_t) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.external != "" {
		return fmt.Errorf("federationtest: the broker at %s comes from %s; stop it where it was started", k.external, KafkaEnv)
	}
	if k.ptr == nil {
		return fmt.Errorf("federationtest: the broker is closed")
	}
	return check(f(k.ptr))
}

// BootstrapServers is the broker's host:port for sync.clusters.*.bootstrap_servers (the same
// across restarts); "" once closed.
func (k *Kafka) BootstrapServers() string {
	if k.external != "" {
		return k.external
	}
	var out *C.federation_string_t
	if err := k.do(func(ptr *C.federation_kafka_t) *C.federation_error_t {
		return C.federation_kafka_bootstrap_servers(ptr, &out)
	}); err != nil {
		return ""
	}
	defer C.federation_string_free(out)
	return C.GoString(C.federation_string_data(out, nil))
}

// Stop stops the broker cleanly; data is kept for Restart.
func (k *Kafka) Stop() error {
	return k.do(func(ptr *C.federation_kafka_t) *C.federation_error_t { return C.federation_kafka_stop(ptr) })
}

// Kill kills the broker like a crash; data written so far is kept for Restart.
func (k *Kafka) Kill() error {
	return k.do(func(ptr *C.federation_kafka_t) *C.federation_error_t { return C.federation_kafka_kill(ptr) })
}

// Restart starts the broker again on the same port with the same data and waits until it
// accepts a topic.
func (k *Kafka) Restart() error {
	return k.do(func(ptr *C.federation_kafka_t) *C.federation_error_t { return C.federation_kafka_restart(ptr) })
}

// Close kills the broker's JVM and deletes its data. Idempotent.
func (k *Kafka) Close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ptr != nil {
		C.federation_kafka_free(k.ptr)
		k.ptr = nil
	}
}

// SyncConfigYAML is a configuration with clusters zervigo and looma whose sync sections both
// use the broker at bootstrap (the plan's simple setup), topics under prefix (make it unique
// per test), entity types user (last_writer_wins), resume (merge_fields) and company
// (requires name), and a fast handler retry (3 attempts, 20-100 ms backoff). Pass the local
// cluster to federation.NewDataSync.
func SyncConfigYAML(bootstrap, prefix string) string {
	return fmt.Sprintf(`clusters:
  zervigo: { static: { user-service: [{ address: 127.0.0.1, port: 8081 }] } }
  looma: { static: { looma-user-api: [{ address: 127.0.0.1, port: 9001 }] } }
sync:
  clusters:
    zervigo: { bootstrap_servers: %q }
    looma: { bootstrap_servers: %q }
  entities:
    user: {}
    resume: { policy: merge_fields }
    company: { required_fields: [name] }
  topic_prefix: %s
  partitions: 3
  handler: { max_attempts: 3, initial_backoff: 20ms, max_backoff: 100ms }
  publish_timeout: 20s
`, bootstrap, bootstrap, prefix)
}
