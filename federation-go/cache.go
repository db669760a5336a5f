package federation

// #include <stdlib.h>
// #include "federation.h"
import "C"

import (
	"encoding/json"
	"unsafe"
)

// WarmReport is what a warm-up did.
type WarmReport struct {
	// Fetched is the number of paths fetched with a 2xx answer (now cached, if storable).
	Fetched uint64 `json:"fetched"`
	// Failed is the number of paths whose fetch failed or answered non-2xx.
	Failed uint64 `json:"failed"`
}

// Invalidate drops service's cached responses for exactly path, in this process and in every
// process sharing the service's cache.l2. It reports whether the service has a cache.
func (c *Client) Invalidate(service, path string) (bool, error) {
	return c.invalidate(service, path, false)
}

// InvalidatePrefix drops service's cached responses for every path starting with prefix, as
// Invalidate does.
func (c *Client) InvalidatePrefix(service, prefix string) (bool, error) {
	return c.invalidate(service, prefix, true)
}

func (c *Client) invalidate(service, path string, prefix bool) (bool, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return false, closedError(service)
	}
	cservice, cpath := C.CString(service), C.CString(path)
	defer C.free(unsafe.Pointer(cservice))
	defer C.free(unsafe.Pointer(cpath))
	var cached C.bool
	if err := C.federation_client_invalidate(c.ptr, cservice, cpath, C.bool(prefix), &cached); err != nil {
		return false, takeError(err, service)
	}
	return bool(cached), nil
}

// InvalidateEntity drops the cached answers of entity (a type named in cache.entities) with
// this id in every service mapping it, here and in every process sharing cache.l2. It returns
// how many paths or prefixes were dropped.
func (c *Client) InvalidateEntity(entity, id string) (int, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return 0, closedError("")
	}
	centity, cid := C.CString(entity), C.CString(id)
	defer C.free(unsafe.Pointer(centity))
	defer C.free(unsafe.Pointer(cid))
	var count C.uint32_t
	if err := C.federation_client_invalidate_entity(c.ptr, centity, cid, &count); err != nil {
		return 0, takeError(err, "")
	}
	return int(count), nil
}

// Warm fetches paths of service (GET) into its cache ahead of traffic, at most
// cache.warm_concurrency at once, and returns when all are done. Progress also shows in
// Health (CacheWarm).
func (c *Client) Warm(service string, paths []string) (WarmReport, error) {
	list, err := json.Marshal(paths)
	if err != nil {
		return WarmReport{}, newError(KindInvalidRequest, service, "paths: "+err.Error())
	}
	text, werr := c.text(func(ptr *C.federation_client_t, out **C.federation_string_t) *C.federation_error_t {
		cservice, cpaths := C.CString(service), C.CString(string(list))
		defer C.free(unsafe.Pointer(cservice))
		defer C.free(unsafe.Pointer(cpaths))
		return C.federation_client_warm(ptr, cservice, cpaths, out)
	})
	if werr != nil {
		return WarmReport{}, werr
	}
	var report WarmReport
	if jerr := json.Unmarshal([]byte(text), &report); jerr != nil {
		return WarmReport{}, newError(KindInternal, service, "warm report is not valid JSON: "+jerr.Error())
	}
	return report, nil
}
