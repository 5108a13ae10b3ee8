/* Element loads and stores of the data types the shim folds (float, half, bfloat16) on the
 * host, with round-to-nearest-even and the canonical NaN 0x7fff, as the GPU's cvt.rn
 * instructions do.  Used by the fold's host twin and by CONVBN_VERIFY. */
#ifndef CONVBN_DTYPE_H
#define CONVBN_DTYPE_H

/* Returns element i of a FLOAT/HALF/BFLOAT16 (cudnnDataType_t) array as float. */
float convbn_element_load(const void *p, int type, long long i);

/* Stores v, rounded to nearest even, as element i of a FLOAT/HALF/BFLOAT16 array. */
void convbn_element_store(void *p, int type, long long i, float v);

#endif
