package federation

/*
#include "glue.h"
*/
import "C"

import (
	"net/http"
	"strings"
	"time"
	"unsafe"
)

// Request is one call to a logical service. The zero value is a GET of "/".
type Request struct {
	// Method is the HTTP method; "" means GET.
	Method string
	// Path is the path and query, e.g. "/api/v1/users/42?full=1"; "" means "/".
	Path string
	// Header holds request headers (a traceparent or X-Federation-Deadline-Ms is honoured).
	Header http.Header
	// Body is sent as is; nil for none.
	Body []byte
	// Timeout is the total deadline across attempts; 0 uses the service's timeout.total. A
	// context deadline that comes earlier wins.
	Timeout time.Duration
	// AttemptTimeout is the per-attempt timeout; 0 uses the service's timeout.attempt.
	AttemptTimeout time.Duration
	// Idempotent overrides whether the request may be retried after reaching a server;
	// nil decides by method (GET, HEAD, PUT, DELETE, OPTIONS, TRACE are idempotent).
	Idempotent *bool
	// Cluster sends only to this cluster (no failover); "" ranks clusters automatically.
	Cluster string
	// Tags replaces the service's required instance tags for this call, e.g.
	// []string{"model=v3"} (per-cluster target tags still apply). nil keeps the service's
	// tags; an empty non-nil slice drops the tag filter. At most 64 tags, none empty.
	Tags []string
}

// Attempt is where one attempt of a call went, when and how.
type Attempt struct {
	// Cluster is the cluster of the instance.
	Cluster string
	// Instance is the instance id (as discovered: the Consul service id or the static id).
	Instance string
	// Offset is the time from the start of the call to the start of this attempt.
	Offset time.Duration
	// Duration is how long the attempt took.
	Duration time.Duration
	// Status is the HTTP status; 0 when no response arrived.
	Status int
	// Outcome is what the attempt did: "success", "retryable_status", "connect_failed",
	// "timeout", "connection_lost", "body_too_large" or "cancelled" (a parallel hedge
	// answered first).
	Outcome string
	// Hedge is true when the attempt was a hedge: a parallel copy of the request sent to
	// another instance because the earlier attempt had not answered within the hedge delay.
	Hedge bool
}

// attemptFrom is the Go form of an attempt's names and timing (C memory, copied).
func attemptFrom(cluster, instance *C.char, t *C.federation_attempt_timing_t) Attempt {
	return Attempt{
		Cluster:  C.GoString(cluster),
		Instance: C.GoString(instance),
		Offset:   time.Duration(t.offset_ns),
		Duration: time.Duration(t.duration_ns),
		Status:   int(t.status),
		Outcome:  C.GoString(t.outcome),
		Hedge:    bool(t.hedge),
	}
}

// CacheStatus says whether the SDK's cache served a call.
type CacheStatus string

// Cache statuses.
const (
	CacheHit     CacheStatus = "hit"
	CacheMiss    CacheStatus = "miss"
	CacheStale   CacheStatus = "stale"
	CacheBypass  CacheStatus = "bypass"
	CacheUnknown CacheStatus = "unknown"
)

// Response is the answer of a call and how it was served. A non-2xx status is a Response,
// not an error.
type Response struct {
	// Status is the HTTP status code.
	Status int
	// Header holds the response headers.
	Header http.Header
	// Body is the whole body (already read).
	Body []byte
	// Cluster is the cluster that answered.
	Cluster string
	// Instance is the id of the instance that answered.
	Instance string
	// Attempts is how many attempts the call made (0 for a cache hit).
	Attempts int
	// Tried lists where each attempt went, in order (len(Tried) == Attempts).
	Tried []Attempt
	// Cache says whether the cache served the call.
	Cache CacheStatus
	// Split says how a call of a service with a `split` was assigned; nil for other services
	// and for calls with a Tags or cluster override (which bypasses the split).
	Split *Split
}

// Split is the assignment of a call of a service with a `split` section.
type Split struct {
	// Arm is the arm the call's sticky key (or a random draw) chose.
	Arm string
	// ServedArm is the arm that took the call: Arm, another arm after a fallback, or "" when
	// no arm could serve and the service's usual routing took it.
	ServedArm string
	// Fallback says why Arm was left ("empty: …" or "ejected: …" with each cluster's reason);
	// "" when Arm served the call.
	Fallback string
}

// splitOf reads the split of the C response r, if its service has one.
func splitOf(r *C.federation_response_t) *Split {
	var arm, served, fallback *C.char
	if !C.federation_response_split(r, &arm, &served, &fallback) {
		return nil
	}
	split := &Split{Arm: C.GoString(arm)}
	if served != nil {
		split.ServedArm = C.GoString(served)
	}
	if fallback != nil {
		split.Fallback = C.GoString(fallback)
	}
	return split
}

func cacheFromC(status C.federation_cache_status_t) CacheStatus {
	switch status {
	case C.FEDERATION_CACHE_HIT:
		return CacheHit
	case C.FEDERATION_CACHE_MISS:
		return CacheMiss
	case C.FEDERATION_CACHE_STALE:
		return CacheStale
	case C.FEDERATION_CACHE_BYPASS:
		return CacheBypass
	default:
		return CacheUnknown
	}
}

// takeResponse copies and frees a C response.
func takeResponse(r *C.federation_response_t) *Response {
	defer C.federation_response_free(r)
	var v C.federation_go_view_t
	C.federation_go_view(r, &v)
	return responseFromView(&v, r)
}

// responseFromView copies the response r, whose view is v, into Go memory. Headers and attempts
// beyond the view's arrays are read from r.
func responseFromView(v *C.federation_go_view_t, r *C.federation_response_t) *Response {
	n := int(v.header_count)
	header := make(http.Header, n)
	var h C.federation_header_t
	for i := range n {
		if i < len(v.headers) {
			h = v.headers[i]
		} else if !C.federation_response_header(r, C.size_t(i), &h) {
			break
		}
		key := headerKey(unsafe.Slice((*byte)(unsafe.Pointer(h.name)), int(h.name_len)))
		value := C.GoStringN((*C.char)(unsafe.Pointer(h.value)), C.int(h.value_len))
		header[key] = append(header[key], value)
	}
	resp := &Response{
		Status:   int(v.status),
		Header:   header,
		Cluster:  C.GoString(v.cluster),
		Instance: C.GoString(v.instance),
		Attempts: int(v.attempts),
		Cache:    cacheFromC(v.cache),
		Split:    splitOf(r),
	}
	if v.tried_count > 0 {
		resp.Tried = make([]Attempt, 0, int(v.attempts))
	}
	for i := range int(v.tried_count) {
		resp.Tried = append(resp.Tried, attemptFrom(v.tried_cluster[i], v.tried_instance[i], &v.tried_timing[i]))
	}
	if int(v.tried_count) == len(v.tried_cluster) {
		var cluster, instance *C.char
		var timing C.federation_attempt_timing_t
		for i := len(v.tried_cluster); C.federation_response_attempt(r, C.size_t(i), &cluster, &instance) &&
			C.federation_response_attempt_timing(r, C.size_t(i), &timing); i++ {
			resp.Tried = append(resp.Tried, attemptFrom(cluster, instance, &timing))
		}
	}
	if v.body_len > 0 {
		resp.Body = C.GoBytes(unsafe.Pointer(v.body), C.int(v.body_len))
	} else {
		resp.Body = []byte{}
	}
	return resp
}

// commonHeaders maps the lowercase names of frequent response headers (as HTTP/1 servers and
// the core send them) to their canonical form, so that those names cost no allocation.
var commonHeaders = func() map[string]string {
	m := make(map[string]string)
	for _, name := range []string{
		"Accept-Ranges", "Age", "Cache-Control", "Connection", "Content-Encoding", "Content-Language",
		"Content-Length", "Content-Type", "Date", "Etag", "Expires", "Keep-Alive", "Last-Modified",
		"Location", "Server", "Set-Cookie", "Strict-Transport-Security", "Traceparent", "Tracestate",
		"Transfer-Encoding", "Vary", "Www-Authenticate", "X-Request-Id", "Retry-After",
	} {
		m[strings.ToLower(name)] = name
	}
	return m
}()

// headerKey is the canonical form of the header name in C memory.
func headerKey(name []byte) string {
	if key, ok := commonHeaders[string(name)]; ok { // no allocation: the conversion is only a lookup key
		return key
	}
	return http.CanonicalHeaderKey(string(name))
}
