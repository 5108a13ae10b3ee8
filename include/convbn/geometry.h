/* Plain-value snapshots of cuDNN descriptors: what a call's tensors, filter and convolution
 * look like, copied out with the real getters so that nothing depends on the program's
 * descriptors after the call returns (invariant 2).  All structs are memcmp-comparable:
 * snapshot functions zero them before filling. */
#ifndef CONVBN_GEOMETRY_H
#define CONVBN_GEOMETRY_H

#include <stddef.h>
#include <cudnn.h>

#define CONVBN_MAX_DIMS 5 /* N, C and up to CONVBN_MAX_SPATIAL spatial dims */
#define CONVBN_MAX_SPATIAL 3

struct convbn_tensor_geom {
    int type;                    /* cudnnDataType_t */
    int nb_dims;
    int dims[CONVBN_MAX_DIMS];   /* N, C, spatial... */
    int strides[CONVBN_MAX_DIMS];
};

struct convbn_filter_geom {
    int type;
    int format;                  /* cudnnTensorFormat_t */
    int nb_dims;
    int dims[CONVBN_MAX_DIMS];   /* K, C/groups, spatial... */
};

struct convbn_conv_geom {
    int nb_spatial;
    int pad[CONVBN_MAX_SPATIAL];
    int stride[CONVBN_MAX_SPATIAL];
    int dilation[CONVBN_MAX_SPATIAL];
    int mode;                    /* cudnnConvolutionMode_t */
    int compute_type;
    int groups;
    int math_type;
};

/* Each returns 0 on success, -1 when the descriptor cannot be read or exceeds the limits
 * above (the caller then treats the call as opaque). */
int convbn_snapshot_tensor(cudnnTensorDescriptor_t desc, struct convbn_tensor_geom *out);
int convbn_snapshot_filter(cudnnFilterDescriptor_t desc, struct convbn_filter_geom *out);
int convbn_snapshot_conv(cudnnConvolutionDescriptor_t desc, struct convbn_conv_geom *out);

/* Returns the number of elements (product of dims). */
size_t convbn_tensor_elems(const struct convbn_tensor_geom *t);
/* Returns the bytes from the first to one past the last element the strides reach. */
size_t convbn_tensor_span_bytes(const struct convbn_tensor_geom *t);
/* Returns the bytes of the elements themselves: elems * element size. */
size_t convbn_tensor_bytes(const struct convbn_tensor_geom *t);
/* Returns the bytes spanned by a (packed) filter. */
size_t convbn_filter_bytes(const struct convbn_filter_geom *f);
/* Returns the element size of a cuDNN data type, 0 if unknown. */
size_t convbn_type_size(int type);
/* Returns 1 if a and b are identical (type, dims, strides). */
int convbn_tensor_same(const struct convbn_tensor_geom *a, const struct convbn_tensor_geom *b);

/* Returns a static short name: "float", "half", "bfloat16", "double", ... */
const char *convbn_type_name(int type);
/* Returns "NCHW"/"NCDHW" (packed), "NHWC"/"NDHWC" (packed) or "strided". */
const char *convbn_layout_name(const struct convbn_tensor_geom *t);
/* Writes dims as "1x64x56x56" into buf (always NUL-terminated); returns buf. */
char *convbn_format_dims(char *buf, size_t cap, const int *dims, int nb);
/* Writes a list as "1,1" (n values) into buf; returns buf. */
char *convbn_format_list(char *buf, size_t cap, const int *values, int n);

#endif
