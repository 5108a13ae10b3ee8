/* The shim's log: every line it prints, prefixed "convbn: ", written with one write(2) to
 * stderr or to CONVBN_LOG_FILE.  Never touches stdout or stdio buffers of the host program.
 * Owns the log file descriptor. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "convbn/log.h"

static int log_fd = STDERR_FILENO;

static void write_line(int fd, const char *fmt, va_list ap)
{
    char line[1024];
    const size_t prefix = sizeof "convbn: " - 1;
    memcpy(line, "convbn: ", prefix);
    int n = vsnprintf(line + prefix, sizeof line - prefix - 1, fmt, ap);
    size_t len = prefix + (n < 0 ? 0 : (size_t)n);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, line + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        off += (size_t)w;
    }
}

void convbn_warnf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    write_line(STDERR_FILENO, fmt, ap);
    va_end(ap);
}

void convbn_logf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    write_line(log_fd, fmt, ap);
    va_end(ap);
}

void convbn_log_open(const struct convbn_config *cfg)
{
    if (!cfg->log_file[0])
        return;
    int fd = open(cfg->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        convbn_warnf("cannot open CONVBN_LOG_FILE %s (%s); logging to stderr", cfg->log_file,
                     strerror(errno));
        return;
    }
    log_fd = fd;
}
