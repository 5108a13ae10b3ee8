/* Caches of shim-owned cuDNN descriptors, keyed by geometry (DESIGN.md invariant 2): one
 * for whole convolutions (x, w, conv, y plus the bias and identity-activation descriptors
 * the fused call needs, and the fused algorithm once chosen) and one for single tensors.
 * Both are bounded LRU tables; an entry held by pending work is never evicted.  Owns the
 * descriptors; creates and destroys them only through the real cuDNN functions. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "convbn/hash.h"
#include <uthash.h>

#include "convbn/desc_cache.h"
#include "convbn/real.h"

#define MAX_CONV_ENTRIES 64
#define MAX_TENSOR_ENTRIES 128

struct conv_key {
    struct convbn_tensor_geom x, y;
    struct convbn_filter_geom w;
    struct convbn_conv_geom conv;
};

struct conv_entry {
    struct convbn_conv_descs descs; /* first: the public pointer is the entry's address */
    struct conv_key key;
    struct convbn_fused_choice fused;
    long long workspace[CUDNN_CONVOLUTION_FWD_ALGO_COUNT]; /* per algorithm; -1: not asked */
    int holds;
    unsigned long last_use;
    UT_hash_handle hh;
};

struct tensor_entry {
    struct convbn_tensor_geom key;
    cudnnTensorDescriptor_t desc;
    int holds;
    unsigned long last_use;
    UT_hash_handle hh;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long use_clock;
static struct conv_entry *conv_entries;
static struct tensor_entry *tensor_entries;

static cudnnTensorDescriptor_t make_tensor(const struct convbn_tensor_geom *t)
{
    cudnnTensorDescriptor_t d = NULL;
    if (real_cudnnCreateTensorDescriptor(&d) != CUDNN_STATUS_SUCCESS)
        return NULL;
    if (real_cudnnSetTensorNdDescriptor(d, (cudnnDataType_t)t->type, t->nb_dims, t->dims,
                                        t->strides) != CUDNN_STATUS_SUCCESS) {
        real_cudnnDestroyTensorDescriptor(d);
        return NULL;
    }
    return d;
}

/* Returns the per-channel bias geometry 1 x K x 1 ... (packed) matching y's rank and type. */
static struct convbn_tensor_geom bias_geometry(const struct convbn_tensor_geom *y)
{
    struct convbn_tensor_geom b;
    memset(&b, 0, sizeof b);
    b.type = y->type;
    b.nb_dims = y->nb_dims;
    for (int i = 0; i < y->nb_dims; i++) {
        b.dims[i] = i == 1 ? y->dims[1] : 1;
        b.strides[i] = i == 0 ? y->dims[1] : 1;
    }
    return b;
}

static int make_filter(struct convbn_conv_descs *d, const struct convbn_filter_geom *w)
{
    return real_cudnnCreateFilterDescriptor(&d->w) == CUDNN_STATUS_SUCCESS &&
           real_cudnnSetFilterNdDescriptor(d->w, (cudnnDataType_t)w->type,
                                           (cudnnTensorFormat_t)w->format, w->nb_dims,
                                           w->dims) == CUDNN_STATUS_SUCCESS;
}

static int make_conv(struct convbn_conv_descs *d, const struct convbn_conv_geom *c)
{
    return real_cudnnCreateConvolutionDescriptor(&d->conv) == CUDNN_STATUS_SUCCESS &&
           real_cudnnSetConvolutionNdDescriptor(d->conv, c->nb_spatial, c->pad, c->stride,
                                                c->dilation, (cudnnConvolutionMode_t)c->mode,
                                                (cudnnDataType_t)c->compute_type) ==
               CUDNN_STATUS_SUCCESS &&
           real_cudnnSetConvolutionGroupCount(d->conv, c->groups) == CUDNN_STATUS_SUCCESS &&
           real_cudnnSetConvolutionMathType(d->conv, (cudnnMathType_t)c->math_type) ==
               CUDNN_STATUS_SUCCESS;
}

static int make_identity(struct convbn_conv_descs *d)
{
    return real_cudnnCreateActivationDescriptor(&d->identity) == CUDNN_STATUS_SUCCESS &&
           real_cudnnSetActivationDescriptor(d->identity, CUDNN_ACTIVATION_IDENTITY,
                                             CUDNN_NOT_PROPAGATE_NAN, 0.0) == CUDNN_STATUS_SUCCESS;
}

static void destroy_descs(struct convbn_conv_descs *d)
{
    if (d->x)
        real_cudnnDestroyTensorDescriptor(d->x);
    if (d->y)
        real_cudnnDestroyTensorDescriptor(d->y);
    if (d->bias)
        real_cudnnDestroyTensorDescriptor(d->bias);
    if (d->w)
        real_cudnnDestroyFilterDescriptor(d->w);
    if (d->conv)
        real_cudnnDestroyConvolutionDescriptor(d->conv);
    if (d->identity)
        real_cudnnDestroyActivationDescriptor(d->identity);
}

static int build_descs(struct convbn_conv_descs *d, const struct conv_key *k)
{
    struct convbn_tensor_geom bias = bias_geometry(&k->y);
    memset(d, 0, sizeof *d);
    d->x = make_tensor(&k->x);
    d->y = make_tensor(&k->y);
    d->bias = make_tensor(&bias);
    if (d->x && d->y && d->bias && make_filter(d, &k->w) && make_conv(d, &k->conv) &&
        make_identity(d))
        return 0;
    destroy_descs(d);
    return -1;
}

/* Evicts the least recently used conv entry nobody holds; returns 0 if one was evicted. */
static int evict_conv(void)
{
    struct conv_entry *e, *tmp, *oldest = NULL;
    HASH_ITER(hh, conv_entries, e, tmp)
        if (__atomic_load_n(&e->holds, __ATOMIC_ACQUIRE) == 0 &&
            (!oldest || e->last_use < oldest->last_use))
            oldest = e;
    if (!oldest)
        return -1;
    HASH_DEL(conv_entries, oldest);
    destroy_descs(&oldest->descs);
    free(oldest);
    return 0;
}

static struct conv_entry *insert_conv(const struct conv_key *key)
{
    if (HASH_COUNT(conv_entries) >= MAX_CONV_ENTRIES && evict_conv() != 0)
        return NULL;
    struct conv_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->key = *key;
    for (int i = 0; i < CUDNN_CONVOLUTION_FWD_ALGO_COUNT; i++)
        e->workspace[i] = -1;
    if (build_descs(&e->descs, key) != 0) {
        free(e);
        return NULL;
    }
    HASH_ADD(hh, conv_entries, key, sizeof e->key, e);
    return e;
}

struct convbn_conv_descs *convbn_descs_acquire(const struct convbn_conv_call *conv,
                                               struct convbn_geometry_facts *facts)
{
    struct conv_key key;
    struct conv_entry *e;
    memset(&key, 0, sizeof key);
    key.x = conv->x;
    key.y = conv->y;
    key.w = conv->w;
    key.conv = conv->conv;
    pthread_mutex_lock(&cache_lock);
    HASH_FIND(hh, conv_entries, &key, sizeof key, e);
    if (!e)
        e = insert_conv(&key);
    if (e) {
        __atomic_add_fetch(&e->holds, 1, __ATOMIC_RELAXED);
        e->last_use = ++use_clock;
        facts->fused = e->fused;
        facts->workspace = conv->algo >= 0 && conv->algo < CUDNN_CONVOLUTION_FWD_ALGO_COUNT
                               ? e->workspace[conv->algo]
                               : -1;
    }
    pthread_mutex_unlock(&cache_lock);
    return e ? &e->descs : NULL;
}

void convbn_descs_release(struct convbn_conv_descs *descs)
{
    struct conv_entry *e = (struct conv_entry *)descs;
    __atomic_sub_fetch(&e->holds, 1, __ATOMIC_RELEASE);
}

void convbn_descs_set_fused(struct convbn_conv_descs *descs, enum convbn_fused_state state,
                            int algo, size_t workspace)
{
    struct conv_entry *e = (struct conv_entry *)descs;
    pthread_mutex_lock(&cache_lock);
    e->fused.state = state;
    e->fused.algo = algo;
    e->fused.workspace = workspace;
    pthread_mutex_unlock(&cache_lock);
}

int convbn_descs_workspace(struct convbn_conv_descs *descs, cudnnHandle_t handle, int algo,
                           size_t *bytes)
{
    struct conv_entry *e = (struct conv_entry *)descs;
    size_t ws = 0;
    if (algo < 0 || algo >= CUDNN_CONVOLUTION_FWD_ALGO_COUNT ||
        real_cudnnGetConvolutionForwardWorkspaceSize(handle, descs->x, descs->w, descs->conv,
                                                     descs->y, (cudnnConvolutionFwdAlgo_t)algo,
                                                     &ws) != CUDNN_STATUS_SUCCESS)
        return -1;
    pthread_mutex_lock(&cache_lock);
    e->workspace[algo] = (long long)ws;
    pthread_mutex_unlock(&cache_lock);
    *bytes = ws;
    return 0;
}

static int evict_tensor(void)
{
    struct tensor_entry *e, *tmp, *oldest = NULL;
    HASH_ITER(hh, tensor_entries, e, tmp)
        if (e->holds == 0 && (!oldest || e->last_use < oldest->last_use))
            oldest = e;
    if (!oldest)
        return -1;
    HASH_DEL(tensor_entries, oldest);
    real_cudnnDestroyTensorDescriptor(oldest->desc);
    free(oldest);
    return 0;
}

static struct tensor_entry *insert_tensor(const struct convbn_tensor_geom *key)
{
    if (HASH_COUNT(tensor_entries) >= MAX_TENSOR_ENTRIES && evict_tensor() != 0)
        return NULL;
    struct tensor_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->key = *key;
    e->desc = make_tensor(key);
    if (!e->desc) {
        free(e);
        return NULL;
    }
    HASH_ADD(hh, tensor_entries, key, sizeof e->key, e);
    return e;
}

cudnnTensorDescriptor_t convbn_tensor_desc_acquire(const struct convbn_tensor_geom *t)
{
    struct tensor_entry *e;
    pthread_mutex_lock(&cache_lock);
    HASH_FIND(hh, tensor_entries, t, sizeof *t, e);
    if (!e)
        e = insert_tensor(t);
    if (e) {
        e->holds++;
        e->last_use = ++use_clock;
    }
    pthread_mutex_unlock(&cache_lock);
    return e ? e->desc : NULL;
}

void convbn_tensor_desc_release(cudnnTensorDescriptor_t desc)
{
    struct tensor_entry *e, *tmp;
    pthread_mutex_lock(&cache_lock);
    HASH_ITER(hh, tensor_entries, e, tmp) {
        if (e->desc == desc) {
            e->holds--;
            break;
        }
    }
    pthread_mutex_unlock(&cache_lock);
}
