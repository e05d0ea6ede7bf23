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

/* The type-erased interface _mlp.pyx calls: buffers as void pointers plus `single` (1: float,
 * 0: double); the *_any entry points below build the typed structs and dispatch. */
typedef struct {
    int single;
    int n_layers;
    const ptrdiff_t *units;
    int hidden_act, out_act, kernel_id;
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

/* ---- thread tuner ---------------------------------------------------------------------------
 * Training repeats the same batch shape hundreds of times, so instead of guessing whether a
 * second thread pays (it does on an idle machine, 1.6x here; it costs 15% when another process
 * keeps one core busy, as the helper is preempted while it holds a task), the epoch loop measures:
 *
 *   probe n threads (PROBE batches) -> probe 1 thread (PROBE batches) -> run the faster one for
 *   EXPLOIT batches -> probe again ...
 *
 * Each probe that confirms the choice doubles the exploit period (up to EXPLOIT_MAX, ~0.3 s of
 * the reference network), so a steady machine pays little for probing the losing side; a change
 * of choice resets it.
 *
 * The first batch after a switch is not timed (waking helpers). Results never depend on the
 * thread count, so switching is free of side effects. State lives in a plain struct the caller
 * keeps between epochs. */
#define PARML_MLP_TUNER_PROBE 4
#define PARML_MLP_TUNER_EXPLOIT 96       /* batches between probes after a change of choice */
#define PARML_MLP_TUNER_EXPLOIT_MAX 1536 /* ... doubling up to this while the choice holds */

typedef struct {
    int n_max;        /* threads allowed; 1 turns the tuner off */
    int adapt;        /* 0: always n_max */
    int phase;        /* 0 exploit, 1 probing n_max, 2 probing 1 */
    int count;        /* batches run in this phase */
    int best;         /* thread count chosen by the last probe */
    int exploit;      /* batches to run before the next probe */
    double t_many, t_one; /* timed seconds of the two probes */
    int64_t switches; /* how often the choice changed (reported by benchmarks) */
    int64_t batches_many, batches_one;
} parml_mlp_tuner;

static double parml_mlp_now(void)
{
    struct timespec ts;
#ifdef CLOCK_MONOTONIC
    clock_gettime(CLOCK_MONOTONIC, &ts);
#else
    timespec_get(&ts, TIME_UTC);
#endif
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parml_mlp_tuner_threads(parml_mlp_tuner *t)
{
    int nt;
    if (t->n_max <= 1) nt = 1;
    else if (!t->adapt) nt = t->n_max;
    else if (t->phase == 1) nt = t->n_max;
    else if (t->phase == 2) nt = 1;
    else nt = t->best;
    if (nt > 1) t->batches_many++;
    else t->batches_one++;
    return nt;
}

static void parml_mlp_tuner_record(parml_mlp_tuner *t, double seconds)
{
    if (t->n_max <= 1 || !t->adapt) return;
    t->count++;
    if (t->phase == 0) {
        if (t->count >= t->exploit) {
            t->phase = 1;
            t->count = 0;
            t->t_many = 0;
        }
        return;
    }
    if (t->count > 1) { /* the first batch of a probe pays for the switch */
        if (t->phase == 1) t->t_many += seconds;
        else t->t_one += seconds;
    }
    if (t->count < PARML_MLP_TUNER_PROBE) return;
    if (t->phase == 1) {
        t->phase = 2;
        t->t_one = 0;
    } else {
        const int best = t->t_many < t->t_one ? t->n_max : 1;
        if (best != t->best) {
            t->switches++;
            t->exploit = PARML_MLP_TUNER_EXPLOIT;
        } else if (t->exploit < PARML_MLP_TUNER_EXPLOIT_MAX) {
            t->exploit *= 2;
        }
        t->best = best;
        t->phase = 0;
    }
    t->count = 0;
}

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
                               parml_mlp_tuner *tuner, parml_parallel_for_fn parallel_for)
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
