/* SPDX-License-Identifier: GPL-2.0 */
/* The loop the stop scenario's programs hold their references across. */
#ifndef BPFH_STOP_H
#define BPFH_STOP_H

#include "kfuncs.h"

/* 2^20: tens of millions of guest instructions, against a budget of about a million */
#define STOP_LOOPS (1 << 20)

static __always_inline int spin(void)
{
	struct bpf_iter_num it;
	int *v, n = 0;

	bpf_iter_num_new(&it, 0, STOP_LOOPS);
	while ((v = bpf_iter_num_next(&it)))
		n++;
	bpf_iter_num_destroy(&it);
	return n;
}

#endif /* BPFH_STOP_H */
