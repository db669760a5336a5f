package federation

/*
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include "federation.h"

// Completions of calls waiting in Go travel through a lock-free list in C memory instead of a
// callback into Go: the library's worker thread pushes a node and, when the list was empty,
// writes an eventfd that Go's network poller watches. One dispatcher goroutine takes the whole
// list at once and hands each outcome to its goroutine. So a worker thread never enters the Go
// runtime (which can block it until a P is free) and a busy process wakes Go once per batch.
typedef struct federation_go_node {
	struct federation_go_node *next;
	uintptr_t handle;
	federation_response_t *response;
	federation_error_t *error;
	int inline_done; // completed inside federation_go_call_queued: not pushed
} federation_go_node_t;

// One completion as handed to Go.
typedef struct {
	uintptr_t handle;
	federation_response_t *response;
	federation_error_t *error;
} federation_go_done_t;

static federation_go_node_t *federation_go_head;
static federation_go_node_t *federation_go_rest; // taken, not yet handed out (dispatcher only)
static int federation_go_fd = -1;

// Creates the eventfd (nonblocking, so Go polls it); -1 on failure.
static int federation_go_queue_init(void) {
	federation_go_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return federation_go_fd;
}

// The node of the call being started on this thread: a call completing inline (a cache hit,
// an immediate error) leaves its outcome in the node, and the caller takes it from there.
static __thread federation_go_node_t *federation_go_inline;

// The completion callback (runs on a library worker thread, or inline on the calling thread).
static void federation_go_enqueue(void *data, federation_response_t *response, federation_error_t *error) {
	federation_go_node_t *n = data;
	n->response = response;
	n->error = error;
	if (n == federation_go_inline) {
		n->inline_done = 1;
		return;
	}
	federation_go_node_t *old = __atomic_load_n(&federation_go_head, __ATOMIC_RELAXED);
	do {
		n->next = old;
	} while (!__atomic_compare_exchange_n(&federation_go_head, &old, n, 1, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
	if (old == NULL) {
		// The dispatcher may be asleep: it takes the list only after a wake-up.
		uint64_t one = 1;
		ssize_t written = write(federation_go_fd, &one, sizeof one);
		(void)written; // fails only if the counter would overflow: a wake-up is pending anyway
	}
}

// federation_client_call completing through the queue, for the goroutine of handle. *state:
// 0 queued; 1 completed inline, the outcome written to *inline_response / *inline_error;
// -1 out of memory (nothing started, NULL returned).
static federation_error_t *federation_go_call_queued(const federation_client_t *client, const char *service,
		const char *method, const char *path, const federation_header_t *headers, size_t headers_len,
		const uint8_t *body, size_t body_len, const federation_call_options_t *options, uintptr_t handle,
		federation_response_t **inline_response, federation_error_t **inline_error, int *state,
		federation_cancel_t **out_cancel) {
	*state = 0;
	federation_go_node_t *node = calloc(1, sizeof *node);
	if (node == NULL) {
		*state = -1;
		return NULL;
	}
	node->handle = handle;
	federation_go_inline = node;
	federation_error_t *err = federation_client_call(client, service, method, path, headers, headers_len,
		body, body_len, options, federation_go_enqueue, node, out_cancel);
	federation_go_inline = NULL;
	if (err != NULL || node->inline_done) {
		if (err == NULL) {
			*inline_response = node->response;
			*inline_error = node->error;
			*state = 1;
		}
		free(node);
	}
	return err;
}

// Moves up to cap completions (oldest first) to out and frees their nodes; 0 when none is
// waiting. Only the dispatcher goroutine calls it.
static size_t federation_go_take(federation_go_done_t *out, size_t cap) {
	if (federation_go_rest == NULL) {
		federation_go_node_t *list = __atomic_exchange_n(&federation_go_head, NULL, __ATOMIC_ACQUIRE);
		federation_go_node_t *fifo = NULL;
		while (list != NULL) {
			federation_go_node_t *next = list->next;
			list->next = fifo;
			fifo = list;
			list = next;
		}
		federation_go_rest = fifo;
	}
	size_t n = 0;
	while (federation_go_rest != NULL && n < cap) {
		federation_go_node_t *node = federation_go_rest;
		federation_go_rest = node->next;
		out[n].handle = node->handle;
		out[n].response = node->response;
		out[n].error = node->error;
		n++;
		free(node);
	}
	return n;
}
*/
import "C"

import (
	"context"
	"os"
	"runtime/cgo"
	"sync"
)

var (
	queueOnce sync.Once
	queueErr  error
)

// startQueue starts the dispatcher goroutine on first use.
func startQueue() error {
	queueOnce.Do(func() {
		fd := C.federation_go_queue_init()
		if fd < 0 {
			queueErr = newError(KindInternal, "", "cannot create the completion eventfd")
			return
		}
		go dispatch(os.NewFile(uintptr(fd), "federation-completions"))
	})
	return queueErr
}

// callQueued starts in completing through the queue to in.handle (see start).
func callQueued(client *C.federation_client_t, in *encoded, cancel **C.federation_cancel_t) *C.federation_error_t {
	var state C.int
	err := C.federation_go_call_queued(client, in.service(), in.method(), in.path(),
		in.headersPtr(), C.size_t(len(in.headers)), in.bodyPtr(), C.size_t(len(in.body)),
		&in.options, C.uintptr_t(in.handle), &in.inline.response, &in.inline.err, &state, cancel)
	in.state = int(state)
	return err
}

// dispatch hands completions to the goroutines waiting for them, forever.
func dispatch(wake *os.File) {
	var buf [256]C.federation_go_done_t
	var counter [8]byte
	for {
		n := int(C.federation_go_take(&buf[0], C.size_t(len(buf))))
		if n == 0 {
			// Blocks in the network poller until a worker pushes onto an empty list.
			if _, err := wake.Read(counter[:]); err != nil {
				panic("federation: completion eventfd: " + err.Error())
			}
			continue
		}
		for _, d := range buf[:n] {
			handle := cgo.Handle(d.handle)
			p := handle.Value().(*pending)
			handle.Delete()
			p.done <- outcome{response: d.response, err: d.error}
		}
	}
}

// waitQueued runs in as a call whose goroutine waits on a channel, fed by the dispatcher.
func (c *Client) waitQueued(ctx context.Context, service string, in *encoded) (w waited, err error) {
	if err := startQueue(); err != nil {
		return w, err
	}
	p := &pending{done: make(chan outcome, 1)}
	handle := cgo.NewHandle(p)
	in.handle = uintptr(handle)
	w.id, w.cancel, err = c.start(service, in)
	if err == nil && in.state < 0 {
		err = newError(KindInternal, service, "out of memory")
	}
	if err != nil || in.state == stateInline {
		handle.Delete()
		w.out = in.inline
		return w, err
	}
	select {
	case w.out = <-p.done:
	case <-ctx.Done():
		w.ctxErr = ctx.Err()
		C.federation_cancel_cancel(w.cancel)
		w.out = <-p.done // completes promptly once cancelled
	}
	return w, nil
}
