/* Finds the real cuDNN functions behind the shim's hooks (DESIGN.md section 5a).
 * dlsym(RTLD_NEXT) finds a libcudnn in the global scope; when the library was pulled in by
 * an object opened with RTLD_LOCAL (Python extension modules) it is not there, so the
 * fallback walks the loaded objects with dl_iterate_phdr and reopens the one whose file
 * name matches with RTLD_NOLOAD, which never loads anything new (invariant 5).
 * Owns the real_* pointers; must not call any of them. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <string.h>

#include "convbn/real.h"

#define CONVBN_CUDNN_FN(kind, ret, name, params, args) __typeof__(name) *real_##name;
#include "cudnn_hooks.def"
#undef CONVBN_CUDNN_FN

struct object_search {
    const char *prefix;
    const char *self_path;
    char path[4096];
};

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int match_object(struct dl_phdr_info *info, size_t size, void *data)
{
    struct object_search *search = data;
    (void)size;
    if (!info->dlpi_name || !info->dlpi_name[0])
        return 0;
    if (search->self_path && strcmp(info->dlpi_name, search->self_path) == 0)
        return 0;
    if (strncmp(base_name(info->dlpi_name), search->prefix, strlen(search->prefix)) != 0)
        return 0;
    strncpy(search->path, info->dlpi_name, sizeof search->path - 1);
    return 1;
}

static const char *own_path(void)
{
    Dl_info info;
    if (dladdr((void *)&convbn_real_lookup, &info) && info.dli_fname)
        return info.dli_fname;
    return NULL;
}

/* Returns a handle to an already loaded object whose file name starts with prefix, or NULL. */
static void *loaded_object(const char *prefix)
{
    struct object_search search = {.prefix = prefix, .self_path = own_path()};
    if (!dl_iterate_phdr(match_object, &search))
        return NULL;
    return dlopen(search.path, RTLD_NOLOAD | RTLD_LAZY);
}

void *convbn_real_lookup(const char *soname_prefix, const char *name)
{
    void *fn = dlsym(RTLD_NEXT, name);
    if (fn)
        return fn;
    void *handle = loaded_object(soname_prefix);
    return handle ? dlsym(handle, name) : NULL;
}

/* Same as convbn_real_lookup, except that the loaded objects are searched only on the first
 * miss (*searched records it, *object keeps the handle found): resolving every cuDNN export
 * must not walk the objects, nor take a reference, once per symbol the library lacks. */
static void *lookup_cached(const char *soname_prefix, const char *name, void **object,
                           int *searched)
{
    void *fn = dlsym(RTLD_NEXT, name);
    if (fn)
        return fn;
    if (!*searched) {
        *object = loaded_object(soname_prefix);
        *searched = 1;
    }
    return *object ? dlsym(*object, name) : NULL;
}

static pthread_once_t cudnn_once = PTHREAD_ONCE_INIT;
static int cudnn_getters_found;

static void resolve_cudnn(void)
{
    void *object = NULL;
    int searched = 0;
#define CONVBN_CUDNN_FN(kind, ret, name, params, args)                                         \
    CONVBN_REAL_SET(name, (__typeof__(real_##name))lookup_cached("libcudnn.so", #name,       \
                                                                 &object, &searched));
#include "cudnn_hooks.def"
#undef CONVBN_CUDNN_FN
    cudnn_getters_found = real_cudnnGetStream && real_cudnnGetTensorNdDescriptor &&
                          real_cudnnGetFilterNdDescriptor && real_cudnnGetConvolutionNdDescriptor &&
                          real_cudnnGetConvolutionGroupCount && real_cudnnGetConvolutionMathType &&
                          real_cudnnGetActivationDescriptor;
}

int convbn_real_cudnn_resolve(void)
{
    pthread_once(&cudnn_once, resolve_cudnn);
    return cudnn_getters_found;
}
