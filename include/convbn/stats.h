/* Counters, the table of distinct pair signatures, the per-pair log line and the exit
 * summary. */
#ifndef CONVBN_STATS_H
#define CONVBN_STATS_H

#include "convbn/pairing.h"
#include "convbn/records.h"

/* Records one matched pair and its outcome.  The first time a signature is seen it is
 * logged (CONVBN_LOG >= 1) with the call site of the current call. */
void convbn_stats_pair(const struct convbn_conv_call *conv, const struct convbn_bn_call *bn,
                       enum convbn_reason reason);

/* Prints the summary table through the log (called once at exit when CONVBN_STATS=1). */
void convbn_stats_summary(void);

#endif
