/* Symbolises the host program's call site of an intercepted call: walks up from here past
 * every frame that lies in the shim itself and names the first one outside it.  libunwind
 * (which also reads static symbols from .symtab) is opened on first use with dlopen, so the
 * shim has no load-time dependency on it and a machine without libunwind still gets call
 * sites from glibc's backtrace() and dladdr (exported symbols only).  Owns the libunwind
 * function pointers; used only for log and trace lines, never on the fast path. */
#define _GNU_SOURCE
#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <execinfo.h>
#include <libunwind.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "convbn/callsite.h"

#define NAME_OF(symbol) NAME_OF_EXPANDED(symbol)
#define NAME_OF_EXPANDED(symbol) #symbol
#define MAX_FRAMES 64

static struct {
    int (*getcontext)(unw_context_t *);
    int (*init_local)(unw_cursor_t *, unw_context_t *);
    int (*step)(unw_cursor_t *);
    int (*get_reg)(unw_cursor_t *, unw_regnum_t, unw_word_t *);
    int (*get_proc_name)(unw_cursor_t *, char *, size_t, unw_word_t *);
} unwind;
static pthread_once_t unwind_once = PTHREAD_ONCE_INIT;

static void open_libunwind(void)
{
    void *lib = dlopen("libunwind.so.8", RTLD_LAZY | RTLD_LOCAL);
    if (!lib)
        return;
    unwind.getcontext = (__typeof__(unwind.getcontext))dlsym(lib, NAME_OF(unw_tdep_getcontext));
    unwind.init_local = (__typeof__(unwind.init_local))dlsym(lib, NAME_OF(unw_init_local));
    unwind.step = (__typeof__(unwind.step))dlsym(lib, NAME_OF(unw_step));
    unwind.get_reg = (__typeof__(unwind.get_reg))dlsym(lib, NAME_OF(unw_get_reg));
    unwind.get_proc_name = (__typeof__(unwind.get_proc_name))dlsym(lib, NAME_OF(unw_get_proc_name));
    if (!unwind.getcontext || !unwind.init_local || !unwind.step || !unwind.get_reg ||
        !unwind.get_proc_name)
        unwind.getcontext = NULL;
}

static const char *short_name(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : (path ? path : "?");
}

static int in_shim(const void *ip)
{
    Dl_info self, here;
    if (!dladdr((void *)&convbn_callsite_describe, &self) || !dladdr(ip, &here))
        return 0;
    return self.dli_fbase == here.dli_fbase;
}

static const char *object_of(const void *ip)
{
    Dl_info info;
    return dladdr(ip, &info) ? short_name(info.dli_fname) : "?";
}

/* libunwind: names static functions too.  Returns 1 when a frame was described. */
static int describe_with_libunwind(char *buf, size_t cap)
{
    unw_context_t context;
    unw_cursor_t cursor;
    if (unwind.getcontext(&context) != 0 || unwind.init_local(&cursor, &context) != 0)
        return 0;
    for (int depth = 0; depth < MAX_FRAMES && unwind.step(&cursor) > 0; depth++) {
        unw_word_t ip, off = 0;
        char name[256];
        if (unwind.get_reg(&cursor, UNW_REG_IP, &ip) != 0)
            return 0;
        if (in_shim((void *)ip))
            continue;
        if (unwind.get_proc_name(&cursor, name, sizeof name, &off) == 0)
            snprintf(buf, cap, "%s+0x%lx (%s)", name, (unsigned long)off, object_of((void *)ip));
        else
            snprintf(buf, cap, "0x%lx (%s)", (unsigned long)ip, object_of((void *)ip));
        return 1;
    }
    return 0;
}

/* glibc: exported symbols only.  Returns 1 when a frame was described. */
static int describe_with_backtrace(char *buf, size_t cap)
{
    void *frames[MAX_FRAMES];
    int n = backtrace(frames, MAX_FRAMES);
    for (int i = 0; i < n; i++) {
        Dl_info info;
        if (in_shim(frames[i]))
            continue;
        if (dladdr(frames[i], &info) && info.dli_sname)
            snprintf(buf, cap, "%s+0x%lx (%s)", info.dli_sname,
                     (unsigned long)((const char *)frames[i] - (const char *)info.dli_saddr),
                     short_name(info.dli_fname));
        else
            snprintf(buf, cap, "%p (%s)", frames[i], object_of(frames[i]));
        return 1;
    }
    return 0;
}

char *convbn_callsite_describe(char *buf, size_t cap)
{
    pthread_once(&unwind_once, open_libunwind);
    if (!(unwind.getcontext && describe_with_libunwind(buf, cap)) &&
        !describe_with_backtrace(buf, cap))
        snprintf(buf, cap, "unknown");
    return buf;
}
