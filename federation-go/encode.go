package federation

/*
#include "glue.h"
*/
import "C"

import (
	"runtime"
	"strconv"
	"strings"
	"unsafe"
)

// Input limits of the C ABI, checked here too for clear errors.
const (
	maxName = 256
	maxPath = 16 * 1024
	maxTags = 64
)

// encoded is a request laid out for the C ABI without C allocations: the strings share one
// NUL-separated buffer, header names and values another, and the header views point into it.
// Everything is pinned for the duration of the C call (the core copies what it keeps).
type encoded struct {
	strs        []byte // service\0method\0path\0cluster\0tag\0tag\0…
	methodAt    int
	pathAt      int
	clusterAt   int
	tagsAt      int // -1: the service's tags
	headerBytes []byte
	headers     []C.federation_header_t
	body        []byte
	options     C.federation_call_options_t
	// req points into the fields above for the C glue; set by pin.
	req C.federation_go_request_t
}

func invalid(service, message string) *Error {
	return newError(KindInvalidRequest, service, message)
}

func encode(service string, req *Request) (*encoded, error) {
	method := req.Method
	if method == "" {
		method = "GET"
	}
	path := req.Path
	if path == "" {
		path = "/"
	}
	for _, f := range []struct{ name, value string }{
		{"service", service}, {"method", method}, {"path", path}, {"cluster", req.Cluster},
	} {
		if strings.IndexByte(f.value, 0) >= 0 {
			return nil, invalid(service, f.name+" contains a NUL byte")
		}
	}
	if len(service) > maxName || len(method) > maxName || len(req.Cluster) > maxName {
		return nil, invalid(service, "service, method or cluster name longer than 256 bytes")
	}
	if len(path) > maxPath {
		return nil, invalid(service, "path longer than 16 KiB")
	}
	tagBytes, err := checkTags(service, req.Tags)
	if err != nil {
		return nil, err
	}
	in := &encoded{body: req.Body}
	in.strs = make([]byte, 0, len(service)+len(method)+len(path)+len(req.Cluster)+5+tagBytes)
	in.strs = append(append(in.strs, service...), 0)
	in.methodAt = len(in.strs)
	in.strs = append(append(in.strs, method...), 0)
	in.pathAt = len(in.strs)
	in.strs = append(append(in.strs, path...), 0)
	in.clusterAt = -1
	if req.Cluster != "" {
		in.clusterAt = len(in.strs)
		in.strs = append(append(in.strs, req.Cluster...), 0)
	}
	in.tagsAt = -1
	if req.Tags != nil {
		in.tagsAt = len(in.strs)
		for _, tag := range req.Tags {
			in.strs = append(append(in.strs, tag...), 0)
		}
		if len(req.Tags) == 0 {
			// No tags: a non-NULL pointer (nothing is read there) drops the filter.
			in.strs = append(in.strs, 0)
		}
		in.options.tags_count = C.size_t(len(req.Tags))
	}

	size, count := 0, 0
	for name, values := range req.Header {
		for _, v := range values {
			size += len(name) + len(v)
			count++
		}
	}
	if count > 0 {
		in.headerBytes = make([]byte, 0, size)
		spans := make([][4]int, 0, count)
		for name, values := range req.Header {
			for _, v := range values {
				n := len(in.headerBytes)
				in.headerBytes = append(in.headerBytes, name...)
				in.headerBytes = append(in.headerBytes, v...)
				spans = append(spans, [4]int{n, len(name), n + len(name), len(v)})
			}
		}
		in.headers = make([]C.federation_header_t, len(spans))
		in.headerSpans(spans)
	}

	in.options.idempotent = -1
	if req.Idempotent != nil {
		if *req.Idempotent {
			in.options.idempotent = 1
		} else {
			in.options.idempotent = 0
		}
	}
	if req.Timeout > 0 {
		in.options.timeout_ms = C.uint64_t(max(req.Timeout.Milliseconds(), 1))
	}
	if req.AttemptTimeout > 0 {
		in.options.attempt_timeout_ms = C.uint64_t(max(req.AttemptTimeout.Milliseconds(), 1))
	}
	return in, nil
}

// headerSpans stores the header views into headerBytes (heap memory does not move; pin keeps
// it alive and marks it pinned for the cgo pointer checks).
func (in *encoded) headerSpans(spans [][4]int) {
	base := unsafe.Pointer(unsafe.SliceData(in.headerBytes))
	for i, s := range spans {
		in.headers[i] = C.federation_header_t{
			name:      (*C.uint8_t)(unsafe.Add(base, s[0])),
			name_len:  C.size_t(s[1]),
			value:     (*C.uint8_t)(unsafe.Add(base, s[2])),
			value_len: C.size_t(s[3]),
		}
	}
}

// pin pins every Go buffer the C call reads and returns the request for the C glue: the
// address of in.req, as an integer (cgo would otherwise re-check every pinned pointer in it on
// each call; pinning is what makes passing them sound).
func (in *encoded) pin(p *runtime.Pinner) C.uintptr_t {
	p.Pin(unsafe.SliceData(in.strs))
	if len(in.headerBytes) > 0 {
		p.Pin(unsafe.SliceData(in.headerBytes))
	}
	if len(in.headers) > 0 {
		p.Pin(unsafe.SliceData(in.headers))
	}
	if len(in.body) > 0 {
		p.Pin(unsafe.SliceData(in.body))
	}
	p.Pin(in)
	if in.clusterAt >= 0 {
		in.options.cluster = in.at(in.clusterAt)
	}
	if in.tagsAt >= 0 {
		in.options.tags = in.at(in.tagsAt)
	}
	in.req = C.federation_go_request_t{
		service:     in.at(0),
		method:      in.at(in.methodAt),
		path:        in.at(in.pathAt),
		headers:     in.headersPtr(),
		headers_len: C.size_t(len(in.headers)),
		body:        in.bodyPtr(),
		body_len:    C.size_t(len(in.body)),
		options:     in.options,
	}
	return C.uintptr_t(uintptr(unsafe.Pointer(&in.req)))
}

// checkTags checks per-call tags and returns their encoded size.
func checkTags(service string, tags []string) (int, error) {
	if len(tags) > maxTags {
		return 0, invalid(service, "more than 64 tags")
	}
	size := 0
	for _, tag := range tags {
		switch {
		case tag == "":
			return 0, invalid(service, "a tag is empty")
		case strings.IndexByte(tag, 0) >= 0:
			return 0, invalid(service, "tag "+strconv.Quote(tag)+" contains a NUL byte")
		case len(tag) > maxName:
			return 0, invalid(service, "a tag is longer than 256 bytes")
		}
		size += len(tag) + 1
	}
	return size, nil
}

func (in *encoded) at(offset int) *C.char {
	return (*C.char)(unsafe.Pointer(&in.strs[offset]))
}

func (in *encoded) headersPtr() *C.federation_header_t {
	if len(in.headers) == 0 {
		return nil
	}
	return unsafe.SliceData(in.headers)
}

func (in *encoded) bodyPtr() *C.uint8_t {
	if len(in.body) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(in.body)))
}
