/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "trec.h"

struct ev *trec_add(struct trec *r, enum ev_kind kind)
{
	ck_assert_uint_lt(r->nevs, TREC_MAX_EVENTS);
	memset(&r->evs[r->nevs], 0, sizeof(r->evs[0]));
	r->evs[r->nevs].kind = kind;
	return &r->evs[r->nevs++];
}

void trec_on_ready(void *user, struct ivshmem_peer *peer)
{
	struct ev *e = trec_add(user, EV_READY);

	/* Callbacks may call the peer's functions. */
	e->state = ivshmem_peer_get_state(peer);
	e->id = ivshmem_peer_get_id(peer);
	e->n = (unsigned)ivshmem_peer_get_vectors(peer, e->id);
}

void trec_on_joined(void *user, struct ivshmem_peer *peer, int id,
		    unsigned vectors)
{
	struct ev *e = trec_add(user, EV_JOINED);

	e->id = id;
	e->n = vectors;
}

void trec_on_left(void *user, struct ivshmem_peer *peer, int id)
{
	trec_add(user, EV_LEFT)->id = id;
}

void trec_on_doorbell(void *user, struct ivshmem_peer *peer,
		      unsigned vector, uint64_t count)
{
	struct ev *e = trec_add(user, EV_DOORBELL);

	e->n = vector;
	e->count = count;
}

void trec_on_disconnected(void *user, struct ivshmem_peer *peer, int error)
{
	trec_add(user, EV_DISCONNECTED)->error = error;
}

void trec_on_log(void *user, int priority, const char *fmt, va_list ap)
{
	struct trec *r = user;

	vsnprintf(r->last_log, sizeof(r->last_log), fmt, ap);
	if (priority == IVSHMEM_LOG_ERR)
		snprintf(r->err_log, sizeof(r->err_log), "%s", r->last_log);
	if (priority < IVSHMEM_LOG_DEBUG)
		r->nlog++;
	if (priority > IVSHMEM_LOG_WARNING)
		return;
	r->nwarn++;
	ck_assert_msg(r->warnings_ok,
		      "unexpected library log (priority %d): %s", priority,
		      r->last_log);
}

const struct ivshmem_peer_ops trec_ops = {
	.ready = trec_on_ready,
	.joined = trec_on_joined,
	.left = trec_on_left,
	.doorbell = trec_on_doorbell,
	.disconnected = trec_on_disconnected,
	.log = trec_on_log,
};

void trec_reset(struct trec *r)
{
	r->nevs = 0;
	r->last_error = 0;
	r->warnings_ok = false;
	r->nwarn = 0;
	r->nlog = 0;
	r->last_log[0] = '\0';
	r->err_log[0] = '\0';
}

unsigned trec_count(const struct trec *r, enum ev_kind kind, unsigned from)
{
	unsigned n = 0;

	for (unsigned i = from; i < r->nevs; i++)
		n += r->evs[i].kind == kind;
	return n;
}

const struct ev *trec_last(const struct trec *r, enum ev_kind kind)
{
	for (unsigned i = r->nevs; i-- > 0;)
		if (r->evs[i].kind == kind)
			return &r->evs[i];
	ck_abort_msg("no event of kind %d", kind);
	return NULL;
}

void trec_pump(struct trec *r, int ms)
{
	struct pollfd p = { .fd = ivshmem_peer_get_fd(r->peer),
			    .events = POLLIN };
	int ret;

	ck_assert_int_ge(p.fd, 0);
	if (poll(&p, 1, ms) < 0)
		ck_assert_int_eq(errno, EINTR);
	ret = ivshmem_peer_dispatch(r->peer);
	if (ret < 0)
		r->last_error = ret;
}

const struct ev *trec_wait_event(struct trec *r, enum ev_kind kind,
				 unsigned from, int ms)
{
	double deadline = now_seconds() + ms / 1000.0;

	for (;;) {
		for (unsigned i = from; i < r->nevs; i++)
			if (r->evs[i].kind == kind)
				return &r->evs[i];
		double rest = deadline - now_seconds();

		if (rest <= 0)
			return NULL;
		trec_pump(r, (int)(rest * 1000) + 1);
	}
}
