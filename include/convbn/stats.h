/* Counters, the table of distinct pair signatures, the per-pair log lines and the exit
 * summary. */
#ifndef CONVBN_STATS_H
#define CONVBN_STATS_H

#include "convbn/pairing.h"
#include "convbn/records.h"

/* Records one matched pair, its outcome (reason; fused or not).  The first time a signature
 * is seen it is logged (CONVBN_LOG >= 1) with the call site of the current call. */
void convbn_stats_pair(const struct convbn_conv_call *conv, const struct convbn_bn_call *bn,
                       enum convbn_reason reason, int fused);

/* Records that a deferred conv ran unfused because of `trigger` (a static string). */
void convbn_stats_flush(const char *trigger);

/* Records the worst errors of one verified fused pair (CONVBN_VERIFY=1); logs the first
 * verification of each signature. */
void convbn_stats_verify(const struct convbn_conv_call *conv, const struct convbn_bn_call *bn,
                         double max_abs, double max_rel);

/* Prints the summary table through the log (called once at exit when CONVBN_STATS=1). */
void convbn_stats_summary(void);

#endif
