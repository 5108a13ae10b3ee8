/* Configuration read from the environment (DESIGN.md section 6). */
#ifndef CONVBN_CONFIG_H
#define CONVBN_CONFIG_H

#include <stddef.h>

enum convbn_mode { CONVBN_MODE_OFF, CONVBN_MODE_OBSERVE, CONVBN_MODE_AUTO, CONVBN_MODE_FUSE };
enum convbn_flush_rule { CONVBN_FLUSH_CONSERVATIVE, CONVBN_FLUSH_PRECISE };

#define CONVBN_PATH_MAX 4096

struct convbn_config {
    enum convbn_mode mode;
    int log_level;                      /* 0 none, 1 per distinct pair, 2 every call */
    char log_file[CONVBN_PATH_MAX];     /* "" = stderr; %p already replaced by the pid */
    int stats;                          /* summary table at exit */
    char trace_file[CONVBN_PATH_MAX];   /* "" = no trace */
    int verify;
    enum convbn_flush_rule flush;
    long max_device_mb;
    int backend_graph;                  /* a backend conv's pair runs as a shim-built graph */
};

/* Looks up one environment variable; returns NULL when unset. */
typedef const char *(*convbn_getenv_fn)(const char *name);
/* Receives one complete warning line (without the "convbn: " prefix or newline). */
typedef void (*convbn_warn_fn)(const char *message);

/* Fills *cfg from the variables that getenv_fn returns, substituting the pid for %p in paths.
 * A bad value produces one call to warn (naming the variable, the value and the default used)
 * and leaves the default in place.  Returns the number of warnings issued. */
int convbn_config_parse(struct convbn_config *cfg, convbn_getenv_fn getenv_fn, convbn_warn_fn warn,
                        long pid);

/* Returns the lower-case name of a mode ("off", "observe", "auto", "fuse"). */
const char *convbn_mode_name(enum convbn_mode mode);

#endif
