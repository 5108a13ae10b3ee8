/* CONVBN_VERIFY=1: compare a fused pair with the unfused calls it replaced. */
#ifndef CONVBN_VERIFY_H
#define CONVBN_VERIFY_H

#include "convbn/planner.h"

/* After a successful fused run of (p, bn): runs the original conv and BN into shim scratch
 * buffers, copies both results to the host, compares them element by element over bn->y's
 * geometry and records the worst absolute and relative errors (convbn_stats_verify).  Leaves
 * the program's buffers untouched.  Does nothing when scratch memory or a copy fails. */
void convbn_verify_pair(const struct convbn_pending *p, const struct convbn_bn_call *bn);

#endif
