/* Pointers to the real cuDNN functions, resolved lazily (DESIGN.md section 5a).  One pointer
 * per function of the installed cuDNN headers: the list is cudnn_hooks.def, generated into
 * the build directory by scripts/gen-cudnn-hooks.py (compile with -I$(BUILD)/gen). */
#ifndef CONVBN_REAL_H
#define CONVBN_REAL_H

#include <cudnn.h>

#include "convbn/real_ready.h"

#define CONVBN_CUDNN_FN(kind, ret, name, params, args) extern __typeof__(name) *real_##name;
#include "cudnn_hooks.def"
#undef CONVBN_CUDNN_FN

/* Resolves every cuDNN function of cudnn_hooks.def, once per process, from the libcudnn
 * already loaded (never loads one).  Pointers stay NULL for functions that cannot be found.
 * Returns 1 when the descriptor getters the shim needs were all found, else 0. */
int convbn_real_cudnn_resolve(void);

/* Returns the address of `name` in the first loaded object whose file name starts with
 * soname_prefix (e.g. "libcudnn.so"), skipping the shim itself; NULL if none is loaded or it
 * lacks the symbol.  Tries dlsym(RTLD_NEXT) first, then dl_iterate_phdr + RTLD_NOLOAD. */
void *convbn_real_lookup(const char *soname_prefix, const char *name);

#endif
