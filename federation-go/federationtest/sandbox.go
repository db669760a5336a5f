// Package federationtest runs the testkit sandbox in-process for tests: two clusters (zervigo
// and looma) on 127.0.0.1, each with its own Consul double and three instances of every seed
// service, plus controls to kill, restart and misconfigure instances and to take a Consul down.
//
// It needs the C library built with the default cargo feature "testkit".
package federationtest

/*
#cgo CFLAGS: -DFEDERATION_TESTKIT
#include <stdlib.h>
#include "federation.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"
)

// Options configure a sandbox; zero values mean the defaults.
type Options struct {
	// InstancesPerService is the number of instances of each seed service (default 3).
	InstancesPerService int
	// CheckInterval is the Consul health-check interval (default 200ms).
	CheckInterval time.Duration
	// CheckTimeout is the timeout of each health check (default 1s).
	CheckTimeout time.Duration
}

// Mode is how an instance handles requests at the transport level.
type Mode int

// Instance modes.
const (
	// Normal answers every request.
	Normal Mode = iota
	// Hang reads the request and never answers.
	Hang
	// Reset reads the request and resets the connection.
	Reset
)

// Behavior is how instances answer.
type Behavior struct {
	// Status is the status of every answer (0: 200).
	Status int
	// Delay is waited before answering.
	Delay time.Duration
	// Mode is the transport behaviour.
	Mode Mode
}

// All addresses every instance of a service in the sandbox methods taking an index.
const All = -1

// Sandbox is a running two-cluster sandbox. Close it when done.
type Sandbox struct {
	mu  sync.Mutex
	ptr *C.federation_sandbox_t
}

func check(err *C.federation_error_t) error {
	if err == nil {
		return nil
	}
	defer C.federation_error_free(err)
	return errors.New("federationtest: " + C.GoString(C.federation_error_message(err)))
}

// Start starts the sandbox and waits until every instance passes its health check.
func Start(opts Options) (*Sandbox, error) {
	copts := C.federation_sandbox_options_t{
		instances_per_service: C.uint32_t(opts.InstancesPerService),
		check_interval_ms:     C.uint64_t(opts.CheckInterval.Milliseconds()),
		check_timeout_ms:      C.uint64_t(opts.CheckTimeout.Milliseconds()),
	}
	var ptr *C.federation_sandbox_t
	if err := check(C.federation_sandbox_start(&copts, &ptr)); err != nil {
		return nil, err
	}
	return &Sandbox{ptr: ptr}, nil
}

// ConfigYAML is the client configuration for this sandbox (logical services user, resume,
// basic, company, job, gateway, ai, resume-processing).
func (s *Sandbox) ConfigYAML() string {
	var out *C.federation_string_t
	if err := check(C.federation_sandbox_config_yaml(s.ptr, &out)); err != nil {
		return ""
	}
	defer C.federation_string_free(out)
	return C.GoString(C.federation_string_data(out, nil))
}

func withNames(cluster, service string, f func(c, s *C.char) *C.federation_error_t) error {
	cc, cs := C.CString(cluster), C.CString(service)
	defer C.free(unsafe.Pointer(cc))
	defer C.free(unsafe.Pointer(cs))
	return check(f(cc, cs))
}

// Kill kills instance index (or All) of Consul service `service` in `cluster`, like a crash.
func (s *Sandbox) Kill(cluster, service string, index int) error {
	return withNames(cluster, service, func(c, sv *C.char) *C.federation_error_t {
		return C.federation_sandbox_kill(s.ptr, c, sv, C.int64_t(index))
	})
}

// Restart restarts killed instance(s) on their old ports.
func (s *Sandbox) Restart(cluster, service string, index int) error {
	return withNames(cluster, service, func(c, sv *C.char) *C.federation_error_t {
		return C.federation_sandbox_restart(s.ptr, c, sv, C.int64_t(index))
	})
}

// SetBehavior sets how instance(s) answer.
func (s *Sandbox) SetBehavior(cluster, service string, index int, b Behavior) error {
	var mode C.federation_sandbox_mode_t
	switch b.Mode {
	case Normal:
		mode = C.FEDERATION_SANDBOX_MODE_NORMAL
	case Hang:
		mode = C.FEDERATION_SANDBOX_MODE_HANG
	case Reset:
		mode = C.FEDERATION_SANDBOX_MODE_RESET
	default:
		return fmt.Errorf("federationtest: unknown mode %d", b.Mode)
	}
	return withNames(cluster, service, func(c, sv *C.char) *C.federation_error_t {
		return C.federation_sandbox_set_behavior(s.ptr, c, sv, C.int64_t(index),
			C.uint16_t(b.Status), C.uint64_t(b.Delay.Milliseconds()), mode)
	})
}

// Requests is how many requests instance(s) received.
func (s *Sandbox) Requests(cluster, service string, index int) (uint64, error) {
	var n C.uint64_t
	err := withNames(cluster, service, func(c, sv *C.char) *C.federation_error_t {
		return C.federation_sandbox_requests(s.ptr, c, sv, C.int64_t(index), &n)
	})
	return uint64(n), err
}

// SetConsulDown takes the cluster's Consul double down (connections refused) or back up.
func (s *Sandbox) SetConsulDown(cluster string, down bool) error {
	cc := C.CString(cluster)
	defer C.free(unsafe.Pointer(cc))
	return check(C.federation_sandbox_consul_set_down(s.ptr, cc, C.bool(down)))
}

// WaitPassing waits until exactly n instances of service pass their check in cluster.
func (s *Sandbox) WaitPassing(cluster, service string, n int, timeout time.Duration) error {
	return withNames(cluster, service, func(c, sv *C.char) *C.federation_error_t {
		return C.federation_sandbox_wait_passing(s.ptr, c, sv, C.uint32_t(n), C.uint64_t(timeout.Milliseconds()))
	})
}

// Close stops every server of the sandbox. Idempotent.
func (s *Sandbox) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ptr != nil {
		C.federation_sandbox_free(s.ptr)
		s.ptr = nil
	}
}
