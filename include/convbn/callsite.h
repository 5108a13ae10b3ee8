/* Where in the host program the current intercepted call comes from. */
#ifndef CONVBN_CALLSITE_H
#define CONVBN_CALLSITE_H

#include <stddef.h>

/* Unwinds the current stack (libunwind) to the first frame outside the shim and writes
 * "function+0xoff (object)" into buf (always NUL-terminated); "unknown" when it cannot.
 * Returns buf.  Costs a full unwind: call only when logging a new signature. */
char *convbn_callsite_describe(char *buf, size_t cap);

#endif
