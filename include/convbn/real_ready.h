/* How the pointers to the real functions are published (include/convbn/real.h,
 * real_cudart.h, real_cuda_driver.h).  The resolver writes each pointer once, under
 * pthread_once, with a release store; a hook's first check reads it with an acquire load, so
 * a thread that finds it set without passing through pthread_once also sees everything the
 * resolver did before (no C11 data race; on x86-64 both are plain moves). */
#ifndef CONVBN_REAL_READY_H
#define CONVBN_REAL_READY_H

/* 1 when real_<name> has been resolved to a function. */
#define CONVBN_REAL_READY(name) (__atomic_load_n(&real_##name, __ATOMIC_ACQUIRE) != NULL)

/* Publishes the resolver's value of real_<name>. */
#define CONVBN_REAL_SET(name, value) __atomic_store_n(&real_##name, (value), __ATOMIC_RELEASE)

#endif
