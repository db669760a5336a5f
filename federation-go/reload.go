package federation

/*
#include <stdlib.h>
#include "federation.h"
*/
import "C"

import (
	"strings"
	"unsafe"
)

// ConfigGeneration is the configuration a client runs (Health().Config): 1 for the one it was
// built with, +1 per accepted Reload, with when and from where it was loaded, what it changed,
// and the last rejected reload since.
type ConfigGeneration struct {
	Generation   uint64   `json:"generation"`
	LoadedAt     float64  `json:"loaded_at"`
	Source       string   `json:"source"`
	Changes      []string `json:"changes"`
	LastRejected *string  `json:"last_rejected"`
}

// Reload replaces the client's configuration without dropping calls in flight: calls already
// started finish on the configuration they started with; breakers, load statistics and
// connections of instances still routed to are kept; discovery watches of removed services
// stop and those of new ones start. An invalid configuration returns an error matching
// ErrConfig naming every invalid field, and the running configuration stays.
func (c *Client) Reload(config string, format Format) error {
	cformat, err := format.c()
	if err != nil {
		return err
	}
	if strings.IndexByte(config, 0) >= 0 {
		return newError(KindConfig, "", "configuration text contains a NUL byte")
	}
	text := C.CString(config)
	defer C.free(unsafe.Pointer(text))
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return closedError("")
	}
	if err := C.federation_client_reload(c.ptr, text, cformat); err != nil {
		return takeError(err, "")
	}
	return nil
}
