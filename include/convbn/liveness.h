/* Proof of liveness (invariant 3): may the conv output be dropped after the BN reads it? */
#ifndef CONVBN_LIVENESS_H
#define CONVBN_LIVENESS_H

enum convbn_liveness {
    CONVBN_LIVENESS_DEAD,      /* proven dead: the oracle says no gradient will need it */
    CONVBN_LIVENESS_GRAD_MODE, /* the oracle says grad mode is on: the framework keeps it */
    CONVBN_LIVENESS_NO_ORACLE, /* no framework oracle in the process: nothing is proven */
};

/* Asks the framework oracle about the calling thread.  PyTorch: an already loaded libc10
 * (found with RTLD_NOLOAD, never loaded by the shim) and c10::GradMode::is_enabled().
 * The lookup happens once per process; the call is made on every query. */
enum convbn_liveness convbn_liveness_query(void);

#endif
