/* Multi-layer perceptron kernels: forward pass, backpropagation and fused optimiser updates on
 * parml's GEMM, instantiated for float and double from mlp_impl.h. Included by _mlp.pyx only.
 *
 * One training step on a batch is two parallel regions (fork-join on parml's pool):
 *
 *   region 1, data parallel over row chunks of the batch (rows are independent until the
 *   weight gradient sums over them):
 *       gather rows -> A0 . W0 + b0 -> act -> ... -> output act -> loss, delta_L
 *       delta_l = (delta_{l+1} . W_l^T) * act'(A_l)           for l = L-1 .. 1
 *
 *   region 2, task parallel over blocks of weights (each task owns rows r0..r1 of one W_l):
 *       G = A_l^T[r0:r1, :] . delta_{l+1}   (k = batch rows, never split)
 *       fused update of W_l[r0:r1], its moments and (first block) the bias, while hot in cache
 *
 * Every output element is one sum in a fixed order whatever the chunking, so results are bitwise
 * identical for every thread count. */
#ifndef PARML_MLP_H
#define PARML_MLP_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gemm.h"
#include "prefetch.h"
#include "tuner.h"

/* activations (hidden layers use the first four; the output layer any) */
enum {
    PARML_ACT_IDENTITY = 0,
    PARML_ACT_RELU = 1,
    PARML_ACT_TANH = 2,
    PARML_ACT_LOGISTIC = 3,
    PARML_ACT_SOFTMAX = 4, /* output only: with log loss */
    PARML_ACT_EXP = 5      /* output only: with Poisson loss */
};

/* optimisers; NONE stores the gradient (for L-BFGS and tests) */
enum { PARML_OPT_NONE = 0, PARML_OPT_SGD = 1, PARML_OPT_ADAM = 2 };

/* status codes returned by the drivers */
enum { PARML_MLP_OK = 0, PARML_MLP_NOMEM = -1, PARML_MLP_NONFINITE = 2 };

/* A layer product runs the direct (unpacked) GEMM when the layer is this small (k * n): packing
 * would cost more than it saves. Chosen from the layer's shape only, never from a chunk's row
 * count, so the choice is the same for every thread count. */
#define PARML_MLP_DIRECT_MAX_KN 256

/* The element-wise pieces (mlp_impl.h) are written once as always-inline bodies and compiled
 * into two variants: `base` at the baseline ISA and `wide` with AVX2 vectors (on x86; elsewhere
 * both are the baseline's). The wide variant
 * leaves out FMA on purpose: without contraction each operation rounds as the baseline's does, so
 * both variants give bitwise the same results and a kernel set changes only their speed. */
#define PARML_MLP_BODY static inline __attribute__((always_inline))
#if PARML_X86
#define PARML_MLP_WIDE __attribute__((target("avx2")))
#else
#define PARML_MLP_WIDE
#endif
#define PARML_MLP_VARIANTS(base, wide, body, params, args)                                         \
    static void base params { body args; }                                                         \
    PARML_MLP_WIDE static void wide params { body args; }

/* The type-erased interface _mlp.pyx calls: buffers as void pointers plus `single` (1: float,
 * 0: double); the *_any entry points below build the typed structs and dispatch. */
typedef struct {
    int single;
    int n_layers;
    const ptrdiff_t *units;
    int hidden_act, out_act, kernel_id;
    int ew_id;               /* the kernel set of the element-wise pieces (normally kernel_id) */
    int share_packs;         /* 1: training steps share packed operands where they pay; 0: each
                              * product packs its own (the same values, so the same results) */
    void **W, **b, **A, **D, **GW, **Gb;
    double **rowsq;
} parml_mlp_net_any;

typedef struct {
    int kind;
    double lr, momentum, beta1, beta2, eps, alpha;
    int nesterov;
    int64_t t;
    void **MW, **Mb, **VW, **Vb;
} parml_mlp_opt_any;

typedef struct {
    const void *X;
    ptrdiff_t ldx;
    const void *Y;
    ptrdiff_t ldy;
    const void *sw;
    const int64_t *idx;
    ptrdiff_t start, bn;
} parml_mlp_batch_any;

/* Shuffled batches read their rows of X, Y and the weights at random, each row a cache miss
 * (X of 40k x 100 floats is 16 MB). Region 1 prefetches (prefetch.h) the row this many ahead while
 * it copies X's rows and while it reads Y's in the loss. */
#define PARML_MLP_PREFETCH_AHEAD 8

/* Batches choose between n threads and one with parml's thread tuner (tuner.h, "batches" plan):
 * training repeats the same batch shape hundreds of times, so it measures instead of guessing
 * (two threads were 1.6x faster on an idle 2-vCPU machine, 15% slower beside a busy core). The
 * state lives in a parml_tuner the caller keeps between epochs. */

#define PT double
#define PSFX(x) x##_d
#define PKERNEL parml_kernel_d
#define PEXP exp
#define PLOG log
#define PTANH tanh
#define PSQRT sqrt
#define PEPS 2.220446049250313e-16
#include "mlp_impl.h"
#undef PT
#undef PSFX
#undef PKERNEL
#undef PEXP
#undef PLOG
#undef PTANH
#undef PSQRT
#undef PEPS

#define PT float
#define PSFX(x) x##_s
#define PKERNEL parml_kernel_s
#define PEXP expf
#define PLOG logf
#define PTANH tanhf
#define PSQRT sqrtf
#define PEPS 1.1920929e-07f
#include "mlp_impl.h"
#undef PT
#undef PSFX
#undef PKERNEL
#undef PEXP
#undef PLOG
#undef PTANH
#undef PSQRT
#undef PEPS

/* One pass over n rows in batches (see parml_mlp_epoch_*); opt->t is updated. */
static int parml_mlp_epoch_any(const parml_mlp_net_any *net, parml_mlp_opt_any *opt,
                               const parml_mlp_batch_any *data, ptrdiff_t n, ptrdiff_t batch,
                               double *row_loss, double *loss_sum, ptrdiff_t *rows_done,
                               parml_tuner *tuner, parml_parallel_for_fn parallel_for)
{
    if (net->single)
        return parml_mlp_epoch_v_s(net, opt, data, n, batch, row_loss, loss_sum, rows_done, tuner,
                                   parallel_for);
    return parml_mlp_epoch_v_d(net, opt, data, n, batch, row_loss, loss_sum, rows_done, tuner,
                               parallel_for);
}

/* out (n x units[L]) = the network's output for n rows of X (row stride ldx). */
static int parml_mlp_forward_any(const parml_mlp_net_any *net, const void *X, ptrdiff_t ldx,
                                 ptrdiff_t n, void *out, ptrdiff_t chunk, int n_threads,
                                 parml_parallel_for_fn parallel_for)
{
    if (net->single)
        return parml_mlp_forward_v_s(net, X, ldx, n, out, chunk, n_threads, parallel_for);
    return parml_mlp_forward_v_d(net, X, ldx, n, out, chunk, n_threads, parallel_for);
}
#endif
