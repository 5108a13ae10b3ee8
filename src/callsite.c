/* Symbolises the host program's call site of an intercepted call with libunwind: walks up
 * from here past every frame that lies in the shim itself and names the first one outside
 * it.  Owns nothing; used only for log lines, never on the fast path. */
#define _GNU_SOURCE
#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <libunwind.h>
#include <stdio.h>
#include <string.h>

#include "convbn/callsite.h"

static const char *short_name(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : (path ? path : "?");
}

static int in_shim(unw_word_t ip)
{
    Dl_info self, here;
    if (!dladdr((void *)&convbn_callsite_describe, &self) || !dladdr((void *)ip, &here))
        return 0;
    return self.dli_fbase == here.dli_fbase;
}

static void describe_frame(unw_cursor_t *cursor, unw_word_t ip, char *buf, size_t cap)
{
    char name[256];
    unw_word_t off = 0;
    Dl_info info;
    const char *object = dladdr((void *)ip, &info) ? short_name(info.dli_fname) : "?";
    if (unw_get_proc_name(cursor, name, sizeof name, &off) == 0)
        snprintf(buf, cap, "%s+0x%lx (%s)", name, (unsigned long)off, object);
    else
        snprintf(buf, cap, "0x%lx (%s)", (unsigned long)ip, object);
}

char *convbn_callsite_describe(char *buf, size_t cap)
{
    unw_context_t context;
    unw_cursor_t cursor;
    snprintf(buf, cap, "unknown");
    if (unw_getcontext(&context) != 0 || unw_init_local(&cursor, &context) != 0)
        return buf;
    for (int depth = 0; depth < 64 && unw_step(&cursor) > 0; depth++) {
        unw_word_t ip;
        if (unw_get_reg(&cursor, UNW_REG_IP, &ip) != 0)
            break;
        if (!in_shim(ip)) {
            describe_frame(&cursor, ip, buf, cap);
            break;
        }
    }
    return buf;
}
