/* SPDX-License-Identifier: MIT */
/* The peer ID table: next-fit allocation, exhaustion, bounds. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "common.h"
#include "table-private.h"

static int owner;

START_TEST(next_fit)
{
	struct ivshmem_table t;

	ck_assert_int_eq(ivshmem_table_init(&t, 8), 0);
	ck_assert_int_eq(ivshmem_table_alloc(&t, &owner), 0);
	ck_assert_int_eq(ivshmem_table_alloc(&t, &owner), 1);
	ck_assert_int_eq(ivshmem_table_alloc(&t, &owner), 2);
	ivshmem_table_release(&t, 1);
	/* A freed ID is not reused until the counter wraps. */
	ck_assert_int_eq(ivshmem_table_alloc(&t, &owner), 3);
	ivshmem_table_release(&t, 0);
	for (int id = 4; id < 8; id++)
		ck_assert_int_eq(ivshmem_table_alloc(&t, &owner), id);
	/* Wrapped: the lowest free IDs in order from the start. */
	ck_assert_int_eq(ivshmem_table_alloc(&t, &owner), 0);
	ck_assert_int_eq(ivshmem_table_alloc(&t, &owner), 1);
	ck_assert_int_eq(ivshmem_table_alloc(&t, &owner), -ENOSPC);
	ck_assert_uint_eq(t.used, 8);
	ivshmem_table_fini(&t);
}
END_TEST

START_TEST(exhaustion_full_range)
{
	struct ivshmem_table t;

	ck_assert_int_eq(ivshmem_table_init(&t, IVSHMEM_MAX_PEERS), 0);
	for (int id = 0; id < IVSHMEM_MAX_PEERS; id++)
		ck_assert_int_eq(ivshmem_table_alloc(&t, &owner), id);
	ck_assert_int_eq(ivshmem_table_alloc(&t, &owner), -ENOSPC);
	ivshmem_table_release(&t, 40000);
	ck_assert_int_eq(ivshmem_table_alloc(&t, &owner), 40000);
	ck_assert_int_eq(ivshmem_table_alloc(&t, &owner), -ENOSPC);
	ivshmem_table_fini(&t);
}
END_TEST

START_TEST(bounds)
{
	struct ivshmem_table t;

	ck_assert_int_eq(ivshmem_table_init(&t, 0), -EINVAL);
	ck_assert_int_eq(ivshmem_table_init(&t, IVSHMEM_MAX_PEERS + 1), -EINVAL);
	ck_assert_int_eq(ivshmem_table_init(&t, 4), 0);
	ck_assert_int_eq(ivshmem_table_alloc(&t, &owner), 0);
	ck_assert_ptr_eq(ivshmem_table_get(&t, 0), &owner);
	ck_assert_ptr_null(ivshmem_table_get(&t, 1));
	ck_assert_ptr_null(ivshmem_table_get(&t, -1));
	ck_assert_ptr_null(ivshmem_table_get(&t, 4));
	ck_assert_ptr_null(ivshmem_table_get(&t, 70000));
	/* Releasing free or out-of-range IDs changes nothing. */
	ivshmem_table_release(&t, 3);
	ivshmem_table_release(&t, -1);
	ivshmem_table_release(&t, 1 << 20);
	ck_assert_uint_eq(t.used, 1);
	ivshmem_table_release(&t, 0);
	ivshmem_table_release(&t, 0);
	ck_assert_uint_eq(t.used, 0);
	ivshmem_table_fini(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("table");
	TCase *tc = tcase_with("table", 0, NULL);

	tcase_add_test(tc, next_fit);
	tcase_add_test(tc, exhaustion_full_range);
	tcase_add_test(tc, bounds);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
