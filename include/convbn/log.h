/* The shim's only output channel: lines starting with "convbn: " on stderr or CONVBN_LOG_FILE. */
#ifndef CONVBN_LOG_H
#define CONVBN_LOG_H

#include "convbn/config.h"

/* Opens CONVBN_LOG_FILE (appending) if cfg names one; on failure warns on stderr and keeps
 * stderr.  Call once, before any convbn_logf. */
void convbn_log_open(const struct convbn_config *cfg);

/* Writes "convbn: " + the formatted text + "\n" with a single write(2); never to stdout. */
void convbn_logf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Same as convbn_logf but always to stderr (used before the log is open). */
void convbn_warnf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
