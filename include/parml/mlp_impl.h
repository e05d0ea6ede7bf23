/* MLP kernels, written once and instantiated per element type by mlp.h with
 *   PT, PSFX, PKERNEL             as for gemm_impl.h
 *   PEXP, PLOG, PTANH, PSQRT      the libm functions of that type
 *   PEPS                          machine epsilon of PT (probabilities are clipped to [eps, 1-eps]
 *                                 in the loss, as scikit-learn does)
 *
 * Shapes: layer l maps units[l] -> units[l+1]; W[l] is units[l] x units[l+1] row-major (scikit-
 * learn's coefs_ layout), b[l] has units[l+1] entries. Activations and deltas are row-major
 * rows x units[l]. */

#ifndef PARML_MLP_BLOCK_DEFINED
#define PARML_MLP_BLOCK_DEFINED
/* one region-2 task: rows r0..r1 of W[layer] */
typedef struct {
    int layer;
    ptrdiff_t r0, r1;
} parml_mlp_block;
#endif

typedef struct {
    int n_layers;            /* L >= 1 weight matrices */
    const ptrdiff_t *units;  /* L + 1 layer widths */
    int hidden_act, out_act;
    PT **W, **b;             /* INOUT parameters */
    PT **A;                  /* scratch, L + 1 buffers of rows x units[l]; A[0] holds gathered input */
    PT **D;                  /* scratch, deltas; D[l] for 1 <= l <= L (D[L] may alias A[L]) */
    PT **GW, **Gb;           /* OUT gradients (PARML_OPT_NONE) or scratch, shaped as W and b */
    double **rowsq;          /* scratch, L buffers of units[l]: sum of squares of each row of W[l] */
    const PKERNEL *K;
    int ew;                  /* kernel set of the element-wise pieces (their variant) */
    /* Operands packed once and shared by a step's tasks (parml_prepack_b's layout), L entries
     * each, NULL where a step's products do not read one: W_l for the forward product, W_l^T for
     * the delta product, delta_{l+1} for the weight gradient (each row chunk packs its own rows).
     * NULL arrays (inference): every product packs its own B. */
    PT **PW, **PWT, **PD;
    PT **pack_buf;           /* 3L buffers behind them (PW's, PWT's, PD's), NULL where none */
} PSFX(parml_mlp_net);

typedef struct {
    int kind;                /* PARML_OPT_* */
    PT lr, momentum, beta1, beta2, eps;
    int nesterov;
    PT alpha;                /* L2 penalty (scikit-learn's alpha) */
    int64_t t;               /* INOUT Adam step count */
    PT **MW, **Mb;           /* INOUT Adam first moments / SGD velocities */
    PT **VW, **Vb;           /* INOUT Adam second moments */
} PSFX(parml_mlp_opt);

typedef struct {
    const PT *X;             /* IN rows of features, row stride ldx */
    ptrdiff_t ldx;
    const PT *Y;             /* IN targets (one-hot for classifiers), row stride ldy */
    ptrdiff_t ldy;
    const PT *sw;            /* IN sample weights or NULL */
    const int64_t *idx;      /* IN row order or NULL: the batch is rows idx[start + i] (or start + i) */
    ptrdiff_t start, bn;
} PSFX(parml_mlp_batch);

static int PSFX(parml_mlp_gemm)(const PKERNEL *K, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                const PT *a, ptrdiff_t rs_a, ptrdiff_t cs_a, const PT *b,
                                ptrdiff_t rs_b, ptrdiff_t cs_b, PT *c, ptrdiff_t rs_c, int direct,
                                const PT *bpre)
{
    PSFX(parml_gemm_args) g;
    g.m = m; g.n = n; g.k = k;
    g.a = a; g.rs_a = rs_a; g.cs_a = cs_a;
    g.b = b; g.rs_b = rs_b; g.cs_b = cs_b;
    g.c = c; g.rs_c = rs_c;
    return PSFX(parml_gemm_prepacked)(K, &g, direct, bpre);
}

/* Whether a product of this shape and B strides packs B (then a shared prepacked B pays). */
static int PSFX(parml_mlp_packs_b)(const PKERNEL *K, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                   ptrdiff_t rs_b, ptrdiff_t cs_b, int direct)
{
    PSFX(parml_gemm_args) g;
    memset(&g, 0, sizeof g);
    g.m = m; g.n = n; g.k = k;
    g.rs_b = rs_b; g.cs_b = cs_b;
    return PSFX(parml_gemm_packs_b)(K, &g, direct);
}

static inline PT PSFX(parml_logistic)(PT x)
{
    return (PT)1 / ((PT)1 + PEXP(-x));
}

/* z[rows x n] <- act(z + b), row by row. */
PARML_MLP_BODY void PSFX(parml_mlp_bias_act_in)(PT *PARML_RESTRICT z, ptrdiff_t rows,
                                                ptrdiff_t n, const PT *PARML_RESTRICT b, int act)
{
    for (ptrdiff_t i = 0; i < rows; ++i, z += n) {
        switch (act) {
        case PARML_ACT_RELU:
            for (ptrdiff_t j = 0; j < n; ++j) {
                const PT v = z[j] + b[j];
                z[j] = v > 0 ? v : 0;
            }
            break;
        case PARML_ACT_TANH:
            for (ptrdiff_t j = 0; j < n; ++j) z[j] = PTANH(z[j] + b[j]);
            break;
        case PARML_ACT_LOGISTIC:
            for (ptrdiff_t j = 0; j < n; ++j) z[j] = PSFX(parml_logistic)(z[j] + b[j]);
            break;
        case PARML_ACT_EXP:
            for (ptrdiff_t j = 0; j < n; ++j) z[j] = PEXP(z[j] + b[j]);
            break;
        case PARML_ACT_SOFTMAX: {
            PT mx = z[0] + b[0];
            for (ptrdiff_t j = 0; j < n; ++j) {
                z[j] += b[j];
                mx = z[j] > mx ? z[j] : mx;
            }
            PT s = 0;
            for (ptrdiff_t j = 0; j < n; ++j) {
                z[j] = PEXP(z[j] - mx);
                s += z[j];
            }
            const PT inv = (PT)1 / s;
            for (ptrdiff_t j = 0; j < n; ++j) z[j] *= inv;
            break;
        }
        default: /* identity */
            for (ptrdiff_t j = 0; j < n; ++j) z[j] += b[j];
        }
    }
}

/* d[count] *= act'(.), written in terms of the activation's output a (as scikit-learn does). */
PARML_MLP_BODY void PSFX(parml_mlp_act_grad_in)(PT *PARML_RESTRICT d, const PT *PARML_RESTRICT a,
                                                ptrdiff_t count, int act)
{
    switch (act) {
    case PARML_ACT_RELU:
        for (ptrdiff_t i = 0; i < count; ++i) d[i] = a[i] > 0 ? d[i] : 0;
        break;
    case PARML_ACT_TANH:
        for (ptrdiff_t i = 0; i < count; ++i) d[i] *= (PT)1 - a[i] * a[i];
        break;
    case PARML_ACT_LOGISTIC:
        for (ptrdiff_t i = 0; i < count; ++i) d[i] *= a[i] * ((PT)1 - a[i]);
        break;
    default:
        break;
    }
}

static inline double PSFX(parml_clip_prob)(PT p)
{
    const PT lo = PEPS, hi = (PT)1 - PEPS;
    return (double)(p < lo ? lo : (p > hi ? hi : p));
}

/* One output row: the loss of prediction p against target y (scikit-learn's per-sample terms,
 * before weighting), and p overwritten with the delta (p - y) * w of the canonical link. */
static double PSFX(parml_mlp_loss_delta)(PT *PARML_RESTRICT p, const PT *PARML_RESTRICT y,
                                         ptrdiff_t n, PT w, int out_act)
{
    double loss = 0;
    switch (out_act) {
    case PARML_ACT_SOFTMAX: /* categorical cross-entropy */
        for (ptrdiff_t j = 0; j < n; ++j)
            if (y[j] != 0) loss -= (double)y[j] * log(PSFX(parml_clip_prob)(p[j]));
        break;
    case PARML_ACT_LOGISTIC: /* binary cross-entropy per output */
        for (ptrdiff_t j = 0; j < n; ++j) {
            const double q = PSFX(parml_clip_prob)(p[j]);
            if (y[j] != 0) loss -= (double)y[j] * log(q);
            if (y[j] != 1) loss -= (1.0 - (double)y[j]) * log(1.0 - q);
        }
        break;
    case PARML_ACT_EXP: /* half Poisson deviance, with scikit-learn's constant terms */
        for (ptrdiff_t j = 0; j < n; ++j) {
            const double yy = y[j], pp = p[j];
            loss += (yy != 0 ? yy * log(yy / pp) : 0.0) - yy + pp;
        }
        break;
    default: /* squared error, averaged over outputs */
        for (ptrdiff_t j = 0; j < n; ++j) {
            const double e = (double)p[j] - (double)y[j];
            loss += e * e;
        }
        loss /= 2.0 * (double)n;
    }
    for (ptrdiff_t j = 0; j < n; ++j) p[j] = (p[j] - y[j]) * w;
    return loss * (double)w;
}

/* g[count] holds raw gradient sums; finish them ((g + alpha w) * inv_sw) and apply the optimiser
 * to w (and its moments m, v) in the same pass. */
PARML_MLP_BODY void PSFX(parml_mlp_update)(const PSFX(parml_mlp_opt) *o, PT *PARML_RESTRICT w,
                                           PT *PARML_RESTRICT g, PT *PARML_RESTRICT m,
                                           PT *PARML_RESTRICT v, ptrdiff_t count, PT alpha,
                                           PT inv_sw, PT lr_t)
{
    switch (o->kind) {
    case PARML_OPT_ADAM: {
        const PT b1 = o->beta1, b2 = o->beta2, c1 = (PT)1 - o->beta1, c2 = (PT)1 - o->beta2;
        const PT eps = o->eps;
        for (ptrdiff_t i = 0; i < count; ++i) {
            const PT gi = (g[i] + alpha * w[i]) * inv_sw;
            const PT mi = b1 * m[i] + c1 * gi;
            const PT vi = b2 * v[i] + c2 * gi * gi;
            m[i] = mi;
            v[i] = vi;
            w[i] -= lr_t * mi / (PSQRT(vi) + eps);
        }
        break;
    }
    case PARML_OPT_SGD: {
        const PT mu = o->momentum, lr = o->lr;
        for (ptrdiff_t i = 0; i < count; ++i) {
            const PT gi = (g[i] + alpha * w[i]) * inv_sw;
            const PT vi = mu * m[i] - lr * gi;
            m[i] = vi;
            w[i] += o->nesterov ? mu * vi - lr * gi : vi;
        }
        break;
    }
    default:
        for (ptrdiff_t i = 0; i < count; ++i) g[i] = (g[i] + alpha * w[i]) * inv_sw;
    }
}

/* Sum of squares of w[0..n) in double: element j goes into partial sum j % 8, and the eight are
 * added in a fixed order. The partial sums are explicit, so vectors of any width compute exactly
 * these sums; a plain running sum per row is one serial chain of double adds (the update pass of
 * a 10k-row epoch took 17.1 million instructions with it, 15.2 with this). */
PARML_MLP_BODY double PSFX(parml_mlp_sumsq)(const PT *PARML_RESTRICT w, ptrdiff_t n)
{
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    ptrdiff_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int q = 0; q < 8; ++q) s[q] += (double)w[j + q] * (double)w[j + q];
    for (int q = 0; j + q < n; ++q) s[q] += (double)w[j + q] * (double)w[j + q];
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

/* Region 2's work after a block's weight gradient: the L2 term's sums of squares of the old
 * weights of rows r0..r1 of W[l], the fused update of those rows, and (first block) the bias from
 * the column sums of the delta d (bn rows of n). */
PARML_MLP_BODY void PSFX(parml_mlp_r2_tail_in)(PSFX(parml_mlp_net) *net,
                                               const PSFX(parml_mlp_opt) *o, int l, ptrdiff_t r0,
                                               ptrdiff_t r1, const PT *d, ptrdiff_t bn, PT inv_sw,
                                               PT lr_t)
{
    const ptrdiff_t n = net->units[l + 1];
    PT *w = net->W[l] + r0 * n, *g = net->GW[l] + r0 * n;
    for (ptrdiff_t r = 0; r < r1 - r0; ++r)
        net->rowsq[l][r0 + r] = PSFX(parml_mlp_sumsq)(w + r * n, n);
    const ptrdiff_t off = r0 * n, cnt = (r1 - r0) * n;
    PSFX(parml_mlp_update)(o, w, g, o->MW ? o->MW[l] + off : NULL, o->VW ? o->VW[l] + off : NULL,
                           cnt, o->alpha, inv_sw, lr_t);
    if (r0 == 0) { /* the bias, once per layer: column sums of the delta, rows in order */
        PT *gb = net->Gb[l];
        for (ptrdiff_t j = 0; j < n; ++j) gb[j] = 0;
        for (ptrdiff_t i = 0; i < bn; ++i)
            for (ptrdiff_t j = 0; j < n; ++j) gb[j] += d[i * n + j];
        PSFX(parml_mlp_update)(o, net->b[l], gb, o->Mb ? o->Mb[l] : NULL, o->Vb ? o->Vb[l] : NULL,
                               n, 0, inv_sw, lr_t);
    }
}

/* The element-wise pieces, each compiled twice from the body above (mlp.h): at the baseline ISA
 * (the plain name) and, on x86, with AVX2 vectors but no FMA (`_wide`). Every operation is the same
 * IEEE operation on the same operands in the same order, so both give bitwise the same results;
 * only the vector width differs (the Adam update ran 2.4x faster with AVX2 on Zen 3). */
PARML_MLP_VARIANTS(PSFX(parml_mlp_bias_act), PSFX(parml_mlp_bias_act_wide),
                   PSFX(parml_mlp_bias_act_in),
                   (PT *PARML_RESTRICT z, ptrdiff_t rows, ptrdiff_t n, const PT *PARML_RESTRICT b,
                    int act),
                   (z, rows, n, b, act))
PARML_MLP_VARIANTS(PSFX(parml_mlp_act_grad), PSFX(parml_mlp_act_grad_wide),
                   PSFX(parml_mlp_act_grad_in),
                   (PT *PARML_RESTRICT d, const PT *PARML_RESTRICT a, ptrdiff_t count, int act),
                   (d, a, count, act))
PARML_MLP_VARIANTS(PSFX(parml_mlp_r2_tail), PSFX(parml_mlp_r2_tail_wide),
                   PSFX(parml_mlp_r2_tail_in),
                   (PSFX(parml_mlp_net) *net, const PSFX(parml_mlp_opt) *o, int l, ptrdiff_t r0,
                    ptrdiff_t r1, const PT *d, ptrdiff_t bn, PT inv_sw, PT lr_t),
                   (net, o, l, r0, r1, d, bn, inv_sw, lr_t))

typedef struct {
    void (*bias_act)(PT *PARML_RESTRICT z, ptrdiff_t rows, ptrdiff_t n, const PT *PARML_RESTRICT b,
                     int act);
    void (*act_grad)(PT *PARML_RESTRICT d, const PT *PARML_RESTRICT a, ptrdiff_t count, int act);
    void (*r2_tail)(PSFX(parml_mlp_net) *net, const PSFX(parml_mlp_opt) *o, int l, ptrdiff_t r0,
                    ptrdiff_t r1, const PT *d, ptrdiff_t bn, PT inv_sw, PT lr_t);
} PSFX(parml_mlp_ew);

/* The variant of each kernel set: AVX-512 sets take the AVX2 one (its vectors are wide enough
 * for these L1-resident loops); NEON's baseline already has 128-bit vectors. */
#define PARML_MLP_EW_BASE {PSFX(parml_mlp_bias_act), PSFX(parml_mlp_act_grad),                    \
                           PSFX(parml_mlp_r2_tail)}
#define PARML_MLP_EW_WIDE {PSFX(parml_mlp_bias_act_wide), PSFX(parml_mlp_act_grad_wide),           \
                           PSFX(parml_mlp_r2_tail_wide)}
static const PSFX(parml_mlp_ew) PSFX(parml_mlp_ew_sets)[PARML_N_SETS] = {
    [PARML_SET_GENERIC] = PARML_MLP_EW_BASE,
    [PARML_SET_AVX2] = PARML_MLP_EW_WIDE,
    [PARML_SET_AVX512] = PARML_MLP_EW_WIDE,
    [PARML_SET_NEON] = PARML_MLP_EW_BASE,
};
#undef PARML_MLP_EW_BASE
#undef PARML_MLP_EW_WIDE

/* ---- region 1: forward, loss and delta propagation over row chunks -------------------------- */

typedef struct {
    PSFX(parml_mlp_net) *net;
    const PSFX(parml_mlp_batch) *bt;
    const PT *a0;            /* the batch's input rows: X in place, or A[0] after the gather */
    ptrdiff_t rs0;
    int gather;
    ptrdiff_t chunk;
    double *row_loss;        /* OUT bn weighted per-row losses */
    volatile int err;
} PSFX(parml_mlp_r1);

static inline ptrdiff_t PSFX(parml_mlp_src_row)(const PSFX(parml_mlp_batch) *bt, ptrdiff_t i)
{
    return bt->idx != NULL ? (ptrdiff_t)bt->idx[bt->start + i] : bt->start + i;
}

static inline void PSFX(parml_mlp_prefetch_targets)(const PSFX(parml_mlp_batch) *bt, ptrdiff_t i,
                                                    ptrdiff_t n_out)
{
    const ptrdiff_t r = PSFX(parml_mlp_src_row)(bt, i);
    parml_prefetch_row(bt->Y + r * bt->ldy, n_out * (ptrdiff_t)sizeof(PT));
    if (bt->sw != NULL) parml_prefetch_one(bt->sw + r);
}

static inline int PSFX(parml_mlp_direct)(const ptrdiff_t *units, int l)
{
    return units[l] * units[l + 1] <= PARML_MLP_DIRECT_MAX_KN;
}

/* c[m x units[l+1]] = act(a[m x units[l]] . W_l + b_l), a with row stride rs. Returns 0, or -1
 * when the GEMM could not allocate its packing buffers. */
static int PSFX(parml_mlp_layer)(const PSFX(parml_mlp_net) *net, int l, ptrdiff_t m, const PT *a,
                                 ptrdiff_t rs, PT *c)
{
    const ptrdiff_t *u = net->units;
    if (PSFX(parml_mlp_gemm)(net->K, m, u[l + 1], u[l], a, rs, 1, net->W[l], u[l + 1], 1, c,
                             u[l + 1], PSFX(parml_mlp_direct)(u, l),
                             net->PW != NULL ? net->PW[l] : NULL) != 0)
        return -1;
    PSFX(parml_mlp_ew_sets)[net->ew].bias_act(c, m, u[l + 1], net->b[l],
                             l == net->n_layers - 1 ? net->out_act : net->hidden_act);
    return 0;
}

static void PSFX(parml_mlp_r1_task)(void *vctx, ptrdiff_t t, int worker)
{
    PSFX(parml_mlp_r1) *x = (PSFX(parml_mlp_r1) *)vctx;
    PSFX(parml_mlp_net) *net = x->net;
    const PSFX(parml_mlp_batch) *bt = x->bt;
    const ptrdiff_t *u = net->units;
    const int L = net->n_layers;
    const ptrdiff_t i0 = t * x->chunk;
    const ptrdiff_t i1 = i0 + x->chunk < bt->bn ? i0 + x->chunk : bt->bn;
    const ptrdiff_t m = i1 - i0;
    (void)worker;
    if (m <= 0) return;
    if (x->gather) {
        const ptrdiff_t xbytes = u[0] * (ptrdiff_t)sizeof(PT);
        for (ptrdiff_t i = i0; i < i1 && i < i0 + PARML_MLP_PREFETCH_AHEAD; ++i)
            parml_prefetch_row(bt->X + PSFX(parml_mlp_src_row)(bt, i) * bt->ldx, xbytes);
        for (ptrdiff_t i = i0; i < i1; ++i) {
            const ptrdiff_t ra = i + PARML_MLP_PREFETCH_AHEAD;
            if (ra < i1)
                parml_prefetch_row(bt->X + PSFX(parml_mlp_src_row)(bt, ra) * bt->ldx, xbytes);
            memcpy(net->A[0] + i * u[0], bt->X + PSFX(parml_mlp_src_row)(bt, i) * bt->ldx,
                   (size_t)xbytes);
        }
    }
    /* forward */
    const PT *a = x->a0 + i0 * x->rs0;
    ptrdiff_t rs = x->rs0;
    for (int l = 0; l < L; ++l) {
        PT *c = net->A[l + 1] + i0 * u[l + 1];
        if (PSFX(parml_mlp_layer)(net, l, m, a, rs, c) != 0) {
            x->err = 1;
            return;
        }
        a = c;
        rs = u[l + 1];
    }
    /* loss and output delta, in place in A[L] (D[L] aliases it); a shuffled batch's rows of Y
     * (and weights) are prefetched ahead, as X's are above */
    for (ptrdiff_t i = i0; x->gather && i < i1 && i < i0 + PARML_MLP_PREFETCH_AHEAD; ++i)
        PSFX(parml_mlp_prefetch_targets)(bt, i, u[L]);
    for (ptrdiff_t i = i0; i < i1; ++i) {
        const ptrdiff_t r = PSFX(parml_mlp_src_row)(bt, i);
        if (x->gather && i + PARML_MLP_PREFETCH_AHEAD < i1)
            PSFX(parml_mlp_prefetch_targets)(bt, i + PARML_MLP_PREFETCH_AHEAD, u[L]);
        const PT w = bt->sw != NULL ? bt->sw[r] : (PT)1;
        x->row_loss[i] = PSFX(parml_mlp_loss_delta)(net->A[L] + i * u[L], bt->Y + r * bt->ldy,
                                                    u[L], w, net->out_act);
    }
    if (net->D[L] != net->A[L]) memcpy(net->D[L] + i0 * u[L], net->A[L] + i0 * u[L], (size_t)(m * u[L]) * sizeof(PT));
    if (net->PD != NULL && net->PD[L - 1] != NULL)
        PSFX(parml_prepack_b_rows)(net->K, bt->bn, u[L], i0, i1, net->D[L], u[L], net->PD[L - 1]);
    /* delta_l = (delta_{l+1} . W_l^T) * act'(A_l) */
    for (int l = L - 1; l >= 1; --l) {
        PT *d = net->D[l] + i0 * u[l];
        if (PSFX(parml_mlp_gemm)(net->K, m, u[l], u[l + 1], net->D[l + 1] + i0 * u[l + 1],
                                 u[l + 1], 1, net->W[l], 1, u[l + 1], d, u[l],
                                 PSFX(parml_mlp_direct)(u, l),
                                 net->PWT != NULL ? net->PWT[l] : NULL) != 0) {
            x->err = 1;
            return;
        }
        PSFX(parml_mlp_ew_sets)[net->ew].act_grad(d, net->A[l] + i0 * u[l], m * u[l],
                                                   net->hidden_act);
        if (net->PD != NULL && net->PD[l - 1] != NULL)
            PSFX(parml_prepack_b_rows)(net->K, bt->bn, u[l], i0, i1, net->D[l], u[l],
                                       net->PD[l - 1]);
    }
}

/* All of each W_l (forward B) and W_l^T (delta product's B) into its shared packed copy; at the
 * start of a pass, after which region 2 repacks the rows it updates (parml_mlp_repack_rows). */
static void PSFX(parml_mlp_pack_weights)(PSFX(parml_mlp_net) *net)
{
    if (net->pack_buf == NULL) return;
    const ptrdiff_t *u = net->units;
    const int L = net->n_layers;
    for (int l = 0; l < L; ++l) {
        if (net->pack_buf[l] != NULL)
            PSFX(parml_prepack_b)(net->K, u[l], u[l + 1], net->W[l], u[l + 1], 1, net->pack_buf[l]);
        if (net->pack_buf[L + l] != NULL)
            PSFX(parml_prepack_b)(net->K, u[l + 1], u[l], net->W[l], 1, u[l + 1],
                                  net->pack_buf[L + l]);
    }
}

/* Rows r0..r1 of W_l, just updated by this task, into both packed copies while in cache. */
static void PSFX(parml_mlp_repack_rows)(PSFX(parml_mlp_net) *net, int l, ptrdiff_t r0, ptrdiff_t r1)
{
    const ptrdiff_t *u = net->units;
    const int L = net->n_layers;
    if (net->pack_buf[l] != NULL)
        PSFX(parml_prepack_b_rows)(net->K, u[l], u[l + 1], r0, r1, net->W[l], u[l + 1],
                                   net->pack_buf[l]);
    if (net->pack_buf[L + l] != NULL)
        PSFX(parml_prepack_bt_cols)(net->K, u[l + 1], u[l], r0, r1, net->W[l], u[l + 1],
                                    net->pack_buf[L + l]);
}

/* ---- region 2: weight gradients and fused updates over blocks of weights --------------------- */

typedef struct {
    PSFX(parml_mlp_net) *net;
    PSFX(parml_mlp_opt) *opt;
    const PT *a0;
    ptrdiff_t rs0, bn;
    const parml_mlp_block *blocks;
    PT inv_sw, lr_t;
    volatile int err;
} PSFX(parml_mlp_r2);

static void PSFX(parml_mlp_r2_task)(void *vctx, ptrdiff_t t, int worker)
{
    PSFX(parml_mlp_r2) *x = (PSFX(parml_mlp_r2) *)vctx;
    PSFX(parml_mlp_net) *net = x->net;
    PSFX(parml_mlp_opt) *o = x->opt;
    const ptrdiff_t *u = net->units;
    const int l = x->blocks[t].layer;
    const ptrdiff_t r0 = x->blocks[t].r0, r1 = x->blocks[t].r1, n = u[l + 1];
    (void)worker;
    const PT *a = l == 0 ? x->a0 : net->A[l];
    const ptrdiff_t rs = l == 0 ? x->rs0 : u[l];
    const PT *d = net->D[l + 1];
    PT *g = net->GW[l] + r0 * n;
    /* G[r0:r1, :] = A_l[:, r0:r1]^T . delta_{l+1}: A_l read transposed in place */
    if (PSFX(parml_mlp_gemm)(net->K, r1 - r0, n, x->bn, a + r0, 1, rs, d, n, 1, g, n,
                             PSFX(parml_mlp_direct)(u, l),
                             net->PD != NULL ? net->PD[l] : NULL) != 0) {
        x->err = 1;
        return;
    }
    PSFX(parml_mlp_ew_sets)[net->ew].r2_tail(net, o, l, r0, r1, d, x->bn, x->inv_sw, x->lr_t);
    if (o->kind != PARML_OPT_NONE && net->pack_buf != NULL)
        PSFX(parml_mlp_repack_rows)(net, l, r0, r1);
}

/* Cut region 2 into blocks: one per layer on one thread; otherwise rows of each W in blocks of
 * about total / (3 n_threads) weights (a multiple of the micro-tile's rows), so a thread slowed
 * by another process just takes fewer. Returns the count, or -1 without memory. */
static ptrdiff_t PSFX(parml_mlp_blocks)(const PSFX(parml_mlp_net) *net, int n_threads,
                                        parml_mlp_block **out)
{
    const ptrdiff_t *u = net->units;
    const int L = net->n_layers;
    ptrdiff_t total = 0, cap = 0;
    for (int l = 0; l < L; ++l) {
        total += u[l] * u[l + 1];
        cap += u[l];
    }
    parml_mlp_block *bl = (parml_mlp_block *)malloc((size_t)cap * sizeof(parml_mlp_block));
    if (bl == NULL) return -1;
    const ptrdiff_t step = net->K->mr;
    ptrdiff_t target = n_threads > 1 ? total / (3 * (ptrdiff_t)n_threads) : total;
    if (target < 1) target = 1;
    ptrdiff_t nb = 0;
    for (int l = 0; l < L; ++l) {
        ptrdiff_t rows = n_threads > 1 ? (target + u[l + 1] - 1) / u[l + 1] : u[l];
        rows = ((rows + step - 1) / step) * step;
        for (ptrdiff_t r0 = 0; r0 < u[l]; r0 += rows) {
            bl[nb].layer = l;
            bl[nb].r0 = r0;
            bl[nb].r1 = r0 + rows < u[l] ? r0 + rows : u[l];
            ++nb;
        }
    }
    *out = bl;
    return nb;
}

/* Row chunk of region 1: the whole batch on one thread; otherwise about 2 chunks per thread. */
static ptrdiff_t PSFX(parml_mlp_chunk)(ptrdiff_t bn, int n_threads)
{
    if (n_threads <= 1) return bn > 0 ? bn : 1;
    ptrdiff_t c = (bn + 2 * (ptrdiff_t)n_threads - 1) / (2 * (ptrdiff_t)n_threads);
    c = ((c + 7) / 8) * 8;
    return c < 16 ? 16 : c;
}

static void PSFX(parml_mlp_run)(ptrdiff_t ntask, int n_threads, parml_task_fn fn, void *ctx,
                                parml_parallel_for_fn parallel_for)
{
    if (n_threads > 1 && ntask > 1 && parallel_for != NULL)
        parallel_for(ntask, n_threads < ntask ? n_threads : (int)ntask, fn, ctx);
    else
        for (ptrdiff_t t = 0; t < ntask; ++t) fn(ctx, t, 0);
}

/* Before a step: which shared packed operands its products read. The packed weights are
 * current (parml_mlp_pack_weights, then region 2's repacking); the deltas are packed by region 1
 * row chunk by row chunk, for the layers whose weight gradient packs its B (the layer's first
 * block stands for the others). Where a product would not pack its B (small, skinny or direct),
 * it runs as before. Every row chunk used to pack the same W again, and every weight block the
 * same delta: on 2 threads 13% of an epoch's samples were packing, against 5% on one thread. */
static void PSFX(parml_mlp_choose_packed)(PSFX(parml_mlp_net) *net, ptrdiff_t bn, ptrdiff_t chunk_m,
                                          const parml_mlp_block *blocks, ptrdiff_t nb)
{
    if (net->pack_buf == NULL) return;
    const ptrdiff_t *u = net->units;
    const int L = net->n_layers;
    const PKERNEL *K = net->K;
    for (int l = 0; l < L; ++l) {
        const int direct = PSFX(parml_mlp_direct)(u, l);
        net->PW[l] = net->pack_buf[l] != NULL
                     && PSFX(parml_mlp_packs_b)(K, chunk_m, u[l + 1], u[l], u[l + 1], 1, direct)
                         ? net->pack_buf[l] : NULL;
        net->PWT[l] = net->pack_buf[L + l] != NULL
                      && PSFX(parml_mlp_packs_b)(K, chunk_m, u[l], u[l + 1], 1, u[l + 1], direct)
                          ? net->pack_buf[L + l] : NULL;
        ptrdiff_t rows = 0;
        for (ptrdiff_t t = 0; t < nb && rows == 0; ++t)
            if (blocks[t].layer == l) rows = blocks[t].r1 - blocks[t].r0;
        net->PD[l] = net->pack_buf[2 * L + l] != NULL
                     && PSFX(parml_mlp_packs_b)(K, rows, u[l + 1], bn, u[l + 1], 1, direct)
                         ? net->pack_buf[2 * L + l] : NULL;
    }
}

/* One step on one batch: forward, loss, backpropagation, then the optimiser's update (or, with
 * PARML_OPT_NONE, the gradient in GW/Gb). *loss gets scikit-learn's batch loss (weighted mean of
 * the per-sample losses plus 0.5 alpha |W|^2 / sum of weights). row_loss: scratch of bn doubles.
 * Returns PARML_MLP_OK, PARML_MLP_NOMEM, or PARML_MLP_NONFINITE (the loss is not finite; nothing
 * was updated). */
static int PSFX(parml_mlp_step)(PSFX(parml_mlp_net) *net, PSFX(parml_mlp_opt) *opt,
                                const PSFX(parml_mlp_batch) *bt, double *row_loss, double *loss,
                                int n_threads, parml_parallel_for_fn parallel_for)
{
    const ptrdiff_t *u = net->units;
    const int L = net->n_layers;
    parml_mlp_block *blocks = NULL;
    const ptrdiff_t nb = PSFX(parml_mlp_blocks)(net, n_threads, &blocks);
    if (nb < 0) return PARML_MLP_NOMEM;
    PSFX(parml_mlp_r1) x1;
    x1.net = net;
    x1.bt = bt;
    x1.gather = bt->idx != NULL;
    x1.a0 = x1.gather ? net->A[0] : bt->X + bt->start * bt->ldx;
    x1.rs0 = x1.gather ? u[0] : bt->ldx;
    x1.chunk = PSFX(parml_mlp_chunk)(bt->bn, n_threads);
    x1.row_loss = row_loss;
    x1.err = 0;
    PSFX(parml_mlp_choose_packed)(net, bt->bn, x1.chunk < bt->bn ? x1.chunk : bt->bn, blocks, nb);
    PSFX(parml_mlp_run)((bt->bn + x1.chunk - 1) / x1.chunk, n_threads, PSFX(parml_mlp_r1_task),
                        &x1, parallel_for);
    if (x1.err) {
        free(blocks);
        return PARML_MLP_NOMEM;
    }

    double data = 0, sw_sum = 0;
    for (ptrdiff_t i = 0; i < bt->bn; ++i) data += row_loss[i];
    if (bt->sw != NULL)
        for (ptrdiff_t i = 0; i < bt->bn; ++i) sw_sum += bt->sw[PSFX(parml_mlp_src_row)(bt, i)];
    else
        sw_sum = (double)bt->bn;
    if (!isfinite(data)) {
        free(blocks);
        return PARML_MLP_NONFINITE;
    }
    if (!(sw_sum > 0)) { /* every row weighs zero: the batch has no gradient; skip it */
        free(blocks);
        *loss = 0;
        return PARML_MLP_OK;
    }

    PSFX(parml_mlp_r2) x2;
    x2.net = net;
    x2.opt = opt;
    x2.a0 = x1.a0;
    x2.rs0 = x1.rs0;
    x2.bn = bt->bn;
    x2.inv_sw = (PT)(1.0 / sw_sum);
    x2.lr_t = opt->lr;
    x2.err = 0;
    if (opt->kind == PARML_OPT_ADAM) {
        opt->t += 1;
        x2.lr_t = (PT)((double)opt->lr * sqrt(1.0 - pow((double)opt->beta2, (double)opt->t))
                       / (1.0 - pow((double)opt->beta1, (double)opt->t)));
    }
    x2.blocks = blocks;
    PSFX(parml_mlp_run)(nb, n_threads, PSFX(parml_mlp_r2_task), &x2, parallel_for);
    free(blocks);
    if (x2.err) return PARML_MLP_NOMEM;

    double sq = 0;
    for (int l = 0; l < L; ++l)
        for (ptrdiff_t r = 0; r < u[l]; ++r) sq += net->rowsq[l][r];
    *loss = data / sw_sum + 0.5 * (double)opt->alpha * sq / sw_sum;
    return PARML_MLP_OK;
}

/* One pass over n rows in batches of `batch` (the last may be shorter). *loss_sum accumulates
 * batch loss x batch rows (scikit-learn's epoch loss is that over n); *rows_done counts the rows
 * of the batches completed. Stops at the first error. The thread count of each batch comes from
 * the tuner (parml_tuner_threads); results do not depend on it. */
static int PSFX(parml_mlp_epoch)(PSFX(parml_mlp_net) *net, PSFX(parml_mlp_opt) *opt,
                                 const PSFX(parml_mlp_batch) *data, ptrdiff_t n, ptrdiff_t batch,
                                 double *row_loss, double *loss_sum, ptrdiff_t *rows_done,
                                 parml_tuner *tuner, parml_parallel_for_fn parallel_for)
{
    PSFX(parml_mlp_batch) bt = *data;
    *loss_sum = 0;
    *rows_done = 0;
    for (ptrdiff_t s = 0; s < n; s += batch) {
        double loss = 0;
        bt.start = data->start + s;
        bt.bn = s + batch < n ? batch : n - s;
        const int nt = parml_tuner_threads(tuner);
        const double t0 = parml_now();
        const int rc = PSFX(parml_mlp_step)(net, opt, &bt, row_loss, &loss, nt, parallel_for);
        if (rc != PARML_MLP_OK) return rc;
        /* only full batches are comparable */
        if (bt.bn == batch) parml_tuner_record(tuner, parml_now() - t0);
        *loss_sum += loss * (double)bt.bn;
        *rows_done += bt.bn;
    }
    return PARML_MLP_OK;
}

/* ---- inference: forward over row chunks, two ping-pong buffers per worker -------------------- */

typedef struct {
    const PSFX(parml_mlp_net) *net;
    const PT *X;
    ptrdiff_t ldx, n, chunk, width;
    PT *out;                 /* OUT n x units[L] */
    PT *scratch;             /* per worker: 2 x chunk x width */
    volatile int err;
} PSFX(parml_mlp_fwd);

static void PSFX(parml_mlp_fwd_task)(void *vctx, ptrdiff_t t, int worker)
{
    PSFX(parml_mlp_fwd) *x = (PSFX(parml_mlp_fwd) *)vctx;
    const PSFX(parml_mlp_net) *net = x->net;
    const ptrdiff_t *u = net->units;
    const int L = net->n_layers;
    const ptrdiff_t i0 = t * x->chunk;
    const ptrdiff_t m = i0 + x->chunk < x->n ? x->chunk : x->n - i0;
    PT *buf = x->scratch + (ptrdiff_t)worker * 2 * x->chunk * x->width;
    const PT *a = x->X + i0 * x->ldx;
    ptrdiff_t rs = x->ldx;
    for (int l = 0; l < L; ++l) {
        PT *c = l == L - 1 ? x->out + i0 * u[L] : buf + (l & 1) * x->chunk * x->width;
        if (PSFX(parml_mlp_layer)(net, l, m, a, rs, c) != 0) {
            x->err = 1;
            return;
        }
        a = c;
        rs = u[l + 1];
    }
}

/* out = the network's output activations for n rows of X. Returns PARML_MLP_OK or NOMEM. */
static int PSFX(parml_mlp_forward)(const PSFX(parml_mlp_net) *net, const PT *X, ptrdiff_t ldx,
                                   ptrdiff_t n, PT *out, ptrdiff_t chunk, int n_threads,
                                   parml_parallel_for_fn parallel_for)
{
    PSFX(parml_mlp_fwd) x;
    const ptrdiff_t ntask = (n + chunk - 1) / chunk;
    if (n <= 0) return PARML_MLP_OK;
    if (n_threads > ntask) n_threads = (int)ntask;
    if (n_threads < 1) n_threads = 1;
    x.net = net;
    x.X = X;
    x.ldx = ldx;
    x.n = n;
    x.chunk = chunk;
    x.width = 1;
    for (int l = 1; l < net->n_layers; ++l) x.width = net->units[l] > x.width ? net->units[l] : x.width;
    x.out = out;
    x.err = 0;
    x.scratch = (PT *)malloc((size_t)n_threads * 2 * chunk * x.width * sizeof(PT));
    if (x.scratch == NULL) return PARML_MLP_NOMEM;
    PSFX(parml_mlp_run)(ntask, n_threads, PSFX(parml_mlp_fwd_task), &x, parallel_for);
    free(x.scratch);
    return x.err ? PARML_MLP_NOMEM : PARML_MLP_OK;
}

/* ---- the type-erased entry points (mlp.h) ---------------------------------------------------- */

static void PSFX(parml_mlp_net_from)(const parml_mlp_net_any *a, PSFX(parml_mlp_net) *net)
{
    net->n_layers = a->n_layers;
    net->units = a->units;
    net->hidden_act = a->hidden_act;
    net->out_act = a->out_act;
    net->W = (PT **)a->W;
    net->b = (PT **)a->b;
    net->A = (PT **)a->A;
    net->D = (PT **)a->D;
    net->GW = (PT **)a->GW;
    net->Gb = (PT **)a->Gb;
    net->rowsq = a->rowsq;
    net->K = &PSFX(parml_kernels)[a->kernel_id];
    net->ew = a->ew_id;
    net->PW = net->PWT = net->PD = net->pack_buf = NULL;
}

/* The shared packed operands of training steps on batches of up to `batch` rows (see
 * parml_mlp_choose_packed): one array of 6L pointers, the 3L buffers then the 3L in use. Returns
 * 0, or -1 without memory (nothing is left allocated). */
static int PSFX(parml_mlp_packs_alloc)(PSFX(parml_mlp_net) *net, ptrdiff_t batch)
{
    const ptrdiff_t *u = net->units;
    const int L = net->n_layers;
    const PKERNEL *K = net->K;
    PT **p = (PT **)calloc((size_t)(6 * L), sizeof(PT *));
    if (p == NULL) return -1;
    net->pack_buf = p;
    net->PW = p + 3 * L;
    net->PWT = p + 4 * L;
    net->PD = p + 5 * L;
    for (int l = 0; l < L; ++l) {
        const int direct = PSFX(parml_mlp_direct)(u, l);
        size_t elems[3] = {0, 0, 0};
        if (PSFX(parml_mlp_packs_b)(K, batch, u[l + 1], u[l], u[l + 1], 1, direct))
            elems[0] = PSFX(parml_prepacked_b_elems)(K, u[l], u[l + 1]);
        if (l >= 1 && PSFX(parml_mlp_packs_b)(K, batch, u[l], u[l + 1], 1, u[l + 1], direct))
            elems[1] = PSFX(parml_prepacked_b_elems)(K, u[l + 1], u[l]);
        if (PSFX(parml_mlp_packs_b)(K, u[l], u[l + 1], batch, u[l + 1], 1, direct))
            elems[2] = PSFX(parml_prepacked_b_elems)(K, batch, u[l + 1]);
        for (int w = 0; w < 3; ++w) {
            if (elems[w] == 0) continue;
            p[w * L + l] = (PT *)aligned_alloc(64, (elems[w] * sizeof(PT) + 63) & ~(size_t)63);
            if (p[w * L + l] == NULL) {
                for (int i = 0; i < 3 * L; ++i) free(p[i]);
                free(p);
                net->PW = net->PWT = net->PD = net->pack_buf = NULL;
                return -1;
            }
        }
    }
    return 0;
}

static void PSFX(parml_mlp_packs_free)(PSFX(parml_mlp_net) *net)
{
    if (net->pack_buf == NULL) return;
    for (int i = 0; i < 3 * net->n_layers; ++i) free(net->pack_buf[i]);
    free(net->pack_buf);
    net->PW = net->PWT = net->PD = net->pack_buf = NULL;
}

static int PSFX(parml_mlp_epoch_v)(const parml_mlp_net_any *na, parml_mlp_opt_any *oa,
                                   const parml_mlp_batch_any *ba, ptrdiff_t n, ptrdiff_t batch,
                                   double *row_loss, double *loss_sum, ptrdiff_t *rows_done,
                                   parml_tuner *tuner, parml_parallel_for_fn parallel_for)
{
    PSFX(parml_mlp_net) net;
    PSFX(parml_mlp_opt) o;
    PSFX(parml_mlp_batch) bt;
    PSFX(parml_mlp_net_from)(na, &net);
    o.kind = oa->kind;
    o.lr = (PT)oa->lr;
    o.momentum = (PT)oa->momentum;
    o.beta1 = (PT)oa->beta1;
    o.beta2 = (PT)oa->beta2;
    o.eps = (PT)oa->eps;
    o.alpha = (PT)oa->alpha;
    o.nesterov = oa->nesterov;
    o.t = oa->t;
    o.MW = (PT **)oa->MW;
    o.Mb = (PT **)oa->Mb;
    o.VW = (PT **)oa->VW;
    o.Vb = (PT **)oa->Vb;
    bt.X = (const PT *)ba->X;
    bt.ldx = ba->ldx;
    bt.Y = (const PT *)ba->Y;
    bt.ldy = ba->ldy;
    bt.sw = (const PT *)ba->sw;
    bt.idx = ba->idx;
    bt.start = ba->start;
    bt.bn = ba->bn;
    /* Without memory for the shared copies each product packs its own operands, as it does
     * for products too small to share them: the packed values, and so the results, are the
     * same. */
    if (na->share_packs && PSFX(parml_mlp_packs_alloc)(&net, batch < n ? batch : n) == 0)
        PSFX(parml_mlp_pack_weights)(&net);
    const int rc = PSFX(parml_mlp_epoch)(&net, &o, &bt, n, batch, row_loss, loss_sum, rows_done,
                                         tuner, parallel_for);
    PSFX(parml_mlp_packs_free)(&net);
    oa->t = o.t;
    return rc;
}

static int PSFX(parml_mlp_forward_v)(const parml_mlp_net_any *na, const void *X, ptrdiff_t ldx,
                                     ptrdiff_t n, void *out, ptrdiff_t chunk, int n_threads,
                                     parml_parallel_for_fn parallel_for)
{
    PSFX(parml_mlp_net) net;
    PSFX(parml_mlp_net_from)(na, &net);
    return PSFX(parml_mlp_forward)(&net, (const PT *)X, ldx, n, (PT *)out, chunk, n_threads,
                                   parallel_for);
}
