package federation

/*
#include "federation.h"
*/
import "C"

import (
	"errors"
	"fmt"
)

// Sentinel errors, one per error kind; test with errors.Is. Every error returned by this
// package is an *Error that matches exactly one of them (ErrClosed errors also match
// ErrCancelled).
var (
	// ErrConfig: the configuration is unusable. Fix the configuration.
	ErrConfig = errors.New("federation: invalid configuration")
	// ErrDiscovery: a registry (Consul) could not be used.
	ErrDiscovery = errors.New("federation: discovery failed")
	// ErrNoHealthyInstance: no instance of the service is available in any cluster; nothing was
	// sent. Serve a fallback.
	ErrNoHealthyInstance = errors.New("federation: no healthy instance")
	// ErrCircuitOpen: every candidate instance has an open circuit breaker. Retry later.
	ErrCircuitOpen = errors.New("federation: circuit open")
	// ErrTimeout: the deadline passed (the call's timeout or the context deadline). Errors of
	// this kind caused by a context deadline also match context.DeadlineExceeded.
	ErrTimeout = errors.New("federation: timeout")
	// ErrTransport: the connection failed or the response could not be read.
	ErrTransport = errors.New("federation: transport error")
	// ErrBudgetExhausted: a retry was needed but the retry budget was spent. Back off.
	ErrBudgetExhausted = errors.New("federation: retry budget exhausted")
	// ErrOverloaded: the service's concurrency or rate limit is reached; nothing was sent.
	ErrOverloaded = errors.New("federation: overloaded")
	// ErrCancelled: the call was cancelled (context cancelled, or the client closed). Errors
	// caused by a cancelled context also match context.Canceled.
	ErrCancelled = errors.New("federation: cancelled")
	// ErrInvalidRequest: the request is invalid (unknown service or cluster, bad path, header or
	// method). Fix the calling code.
	ErrInvalidRequest = errors.New("federation: invalid request")
	// ErrInternal: a bug in the library (a caught panic, or a kind this version does not know).
	ErrInternal = errors.New("federation: internal error")
	// ErrClosed: the client was closed before or during the call. Also matches ErrCancelled.
	ErrClosed = errors.New("federation: client closed")
	// ErrTarget: the service's sync store (a SyncTarget given to DataSync.ApplyLocal) failed;
	// the message has its error.
	ErrTarget = errors.New("federation: sync target failed")
)

// Kind is the coarse category of an Error.
type Kind int

// The error kinds, mirroring the Rust ErrorKind set.
const (
	KindInternal Kind = iota
	KindConfig
	KindDiscovery
	KindNoHealthyInstance
	KindCircuitOpen
	KindTimeout
	KindTransport
	KindBudgetExhausted
	KindOverloaded
	KindCancelled
	KindInvalidRequest
	// KindTarget: a sync store failed (DataSync.ApplyLocal).
	KindTarget
)

// kindFromC is the one mapping from the C ABI's error kinds.
func kindFromC(kind C.federation_error_kind_t) Kind {
	return kindFromCode(uint32(kind))
}

// kindFromCode maps a FEDERATION_ERROR_* value.
func kindFromCode(kind uint32) Kind {
	switch kind {
	case C.FEDERATION_ERROR_CONFIG:
		return KindConfig
	case C.FEDERATION_ERROR_DISCOVERY:
		return KindDiscovery
	case C.FEDERATION_ERROR_NO_HEALTHY_INSTANCE:
		return KindNoHealthyInstance
	case C.FEDERATION_ERROR_CIRCUIT_OPEN:
		return KindCircuitOpen
	case C.FEDERATION_ERROR_TIMEOUT:
		return KindTimeout
	case C.FEDERATION_ERROR_TRANSPORT:
		return KindTransport
	case C.FEDERATION_ERROR_BUDGET_EXHAUSTED:
		return KindBudgetExhausted
	case C.FEDERATION_ERROR_OVERLOADED:
		return KindOverloaded
	case C.FEDERATION_ERROR_CANCELLED:
		return KindCancelled
	case C.FEDERATION_ERROR_INVALID_REQUEST:
		return KindInvalidRequest
	case C.FEDERATION_ERROR_TARGET:
		return KindTarget
	default: // C.FEDERATION_ERROR_INTERNAL and kinds newer than this package
		return KindInternal
	}
}

// Sentinel is the sentinel error of the kind.
func (k Kind) Sentinel() error {
	switch k {
	case KindConfig:
		return ErrConfig
	case KindDiscovery:
		return ErrDiscovery
	case KindNoHealthyInstance:
		return ErrNoHealthyInstance
	case KindCircuitOpen:
		return ErrCircuitOpen
	case KindTimeout:
		return ErrTimeout
	case KindTransport:
		return ErrTransport
	case KindBudgetExhausted:
		return ErrBudgetExhausted
	case KindOverloaded:
		return ErrOverloaded
	case KindCancelled:
		return ErrCancelled
	case KindInvalidRequest:
		return ErrInvalidRequest
	case KindTarget:
		return ErrTarget
	default:
		return ErrInternal
	}
}

// String is the kind's stable lower-case label (as in the Rust ErrorKind).
func (k Kind) String() string {
	switch k {
	case KindConfig:
		return "config"
	case KindDiscovery:
		return "discovery"
	case KindNoHealthyInstance:
		return "no_healthy_instance"
	case KindCircuitOpen:
		return "circuit_open"
	case KindTimeout:
		return "timeout"
	case KindTransport:
		return "transport"
	case KindBudgetExhausted:
		return "budget_exhausted"
	case KindOverloaded:
		return "overloaded"
	case KindCancelled:
		return "cancelled"
	case KindInvalidRequest:
		return "invalid_request"
	case KindTarget:
		return "target"
	default:
		return "internal"
	}
}

// Error is a failed call or an unusable configuration, with details.
type Error struct {
	// Kind says what the caller should do; errors.Is(err, Kind.Sentinel()) holds.
	Kind Kind
	// Service is the logical service called ("" for configuration errors).
	Service string
	// Message is the library's description (never contains header values).
	Message string
	// Attempts is how many attempts were sent before the call failed (0: nothing was sent).
	Attempts int
	// Tried lists where each attempt went, in order (len(Tried) == Attempts).
	Tried []Attempt

	closed bool
	cause  error
}

func (e *Error) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("federation: call to service %q: %s", e.Service, e.Message)
	}
	return "federation: " + e.Message
}

// Is matches the kind's sentinel (and ErrClosed for calls ended by Close).
func (e *Error) Is(target error) bool {
	return target == e.Kind.Sentinel() || (e.closed && target == ErrClosed)
}

// Unwrap gives the context error for calls ended by their context, else nil.
func (e *Error) Unwrap() error {
	return e.cause
}

// takeError converts and frees a C error.
func takeError(err *C.federation_error_t, service string) *Error {
	defer C.federation_error_free(err)
	e := &Error{
		Kind:     kindFromC(C.federation_error_kind(err)),
		Service:  service,
		Message:  C.GoString(C.federation_error_message(err)),
		Attempts: int(C.federation_error_attempts(err)),
	}
	var cluster, instance *C.char
	var timing C.federation_attempt_timing_t
	for i := 0; C.federation_error_attempt(err, C.size_t(i), &cluster, &instance) &&
		C.federation_error_attempt_timing(err, C.size_t(i), &timing); i++ {
		e.Tried = append(e.Tried, attemptFrom(cluster, instance, &timing))
	}
	return e
}

func newError(kind Kind, service, message string) *Error {
	return &Error{Kind: kind, Service: service, Message: message}
}
