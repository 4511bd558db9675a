/* SPDX-License-Identifier: MIT */
/*
 * What a libivshmem peer's callbacks saw: trec_ops records every event in
 * order in the struct trec passed as the peer's user pointer, and fails
 * the test on a library log message at WARNING or above unless the
 * recorder's warnings_ok is set.
 */
#ifndef IVSHMEM_TESTS_TREC_H
#define IVSHMEM_TESTS_TREC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "ivshmem.h"

enum ev_kind {
	EV_READY = 1,
	EV_JOINED,
	EV_LEFT,
	EV_DOORBELL,
	EV_DISCONNECTED,
};

struct ev {
	enum ev_kind kind;
	int id;         /* joined, left; ready: get_id() inside the callback */
	unsigned n;     /* joined: vectors; doorbell: vector;
			 * ready: own vectors inside the callback */
	uint64_t count; /* doorbell */
	int error;      /* disconnected */
	int state;      /* ready: get_state() inside the callback */
};

#define TREC_MAX_EVENTS 256
struct trec {
	struct ivshmem_peer *peer;      /* the suite's, for trec_pump() */
	struct ev evs[TREC_MAX_EVENTS];
	unsigned nevs;
	int id;                 /* the suite's: the peer's own ID */
	int last_error;         /* the last negative result of trec_pump() */
	bool warnings_ok;       /* the test expects logs at WARNING or above */
	unsigned nwarn;         /* log messages at WARNING or above */
	unsigned nlog;          /* log messages above DEBUG */
	char last_log[512];     /* the last log message */
	char err_log[512];      /* the last message at IVSHMEM_LOG_ERR */
};

/* The callbacks: user is the struct trec. Each is also there alone, for
 * callbacks that record and then do more. */
extern const struct ivshmem_peer_ops trec_ops;
void trec_on_ready(void *user, struct ivshmem_peer *peer);
void trec_on_joined(void *user, struct ivshmem_peer *peer, int id,
		    unsigned vectors);
void trec_on_left(void *user, struct ivshmem_peer *peer, int id);
void trec_on_doorbell(void *user, struct ivshmem_peer *peer,
		      unsigned vector, uint64_t count);
void trec_on_disconnected(void *user, struct ivshmem_peer *peer, int error);
void trec_on_log(void *user, int priority, const char *fmt, va_list ap)
	IVSHMEM_PRINTF(3, 0);

/* Record an event (zeroed but for its kind) and return it for filling
 * in; fails the test when TREC_MAX_EVENTS are recorded already. */
struct ev *trec_add(struct trec *r, enum ev_kind kind);
/* Forget every event and log message; warnings_ok is false again. The
 * peer and id stay. */
void trec_reset(struct trec *r);
/* Events of this kind at index from or later. */
unsigned trec_count(const struct trec *r, enum ev_kind kind, unsigned from);
/* The last event of this kind; fails the test if there is none. */
const struct ev *trec_last(const struct trec *r, enum ev_kind kind);
/* Wait up to ms for r->peer's fd, then dispatch (a negative result is
 * kept in r->last_error). */
void trec_pump(struct trec *r, int ms);
/* The first event of this kind at index from or later, pumping up to ms
 * for it; NULL if none came. */
const struct ev *trec_wait_event(struct trec *r, enum ev_kind kind,
				 unsigned from, int ms);

#endif
