/* parml's C-level benchmark: every kernel family timed through the C API (parml.h) with no
 * interpreter, allocator or argument checks in the timed loop, per kernel set, each result first
 * checked against a naive loop. Built and run by `parml bench c`; prints one JSON document on
 * stdout (progress on stderr) and exits 1 when a check failed, 2 on bad arguments.
 *
 *   parml_bench [--quick | --tiny] [--isa SET] [--kernel NAME] [--threads N]
 *
 * Kernels: ukr (the GEMM micro-kernel alone, operands in L1), gemm (square and MLP-layer shapes),
 * add, linear (fused logistic loss + gradient), hist (gradient histograms), predict (forest).
 * Rates are compared with the machine's measured peaks: an FMA loop per kernel set (probe.h) for
 * compute-bound kernels, a read of a buffer far larger than the caches for memory-bound ones.
 * Cycles come from a dependent integer-add chain (one add per cycle on every x86-64 and AArch64
 * core), so "cycles" are core cycles at the clock the chain ran at. When the kernel allows
 * perf_event_open, the 1-thread rows also carry instructions and cycles per inner iteration. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <parml/parml.h>
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#include <parml/probe.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#ifdef __linux__
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

enum { SIZE_TINY = 0, SIZE_QUICK = 1, SIZE_FULL = 2 };

static int g_size = SIZE_FULL;
static int g_failures = 0;
static int g_rows = 0;
static double g_hz = 0.0;          /* core cycles per second (add chain) */
static double g_read_bw[2];        /* bytes/s read by 1 and by max threads */
static int g_max_threads = 1;
static int g_perf_fd[2] = {-1, -1};
static char g_perf_note[160] = "";

/* ---- probes ---------------------------------------------------------------------------------- */

/* Core clock: 8 dependent register-register adds per iteration (latency 1 cycle each on every
 * x86-64 and AArch64 core; an add of an immediate would not do: Golden Cove and later fold
 * those at rename), best of 5 runs. */
static double clock_hz(void)
{
#if defined(__x86_64__) || defined(__aarch64__)
    double best = 0.0;
    for (int r = 0; r < 5; ++r) {
        unsigned long x = 0, y = 1;
        const long iters = 4000000;
        const double t0 = parml_now();
        for (long i = 0; i < iters; ++i) {
#if defined(__x86_64__)
            __asm__ volatile("add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
                             "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0"
                             : "+r"(x) : "r"(y));
#else
            __asm__ volatile("add %0, %0, %1\n\tadd %0, %0, %1\n\tadd %0, %0, %1\n\t"
                             "add %0, %0, %1\n\tadd %0, %0, %1\n\tadd %0, %0, %1\n\t"
                             "add %0, %0, %1\n\tadd %0, %0, %1" : "+r"(x) : "r"(y));
#endif
        }
        const double hz = 8.0 * (double)iters / (parml_now() - t0);
        if (hz > best) best = hz;
    }
    return best;
#else
    return 0.0;
#endif
}

static void perf_setup(void)
{
#ifdef __linux__
    const unsigned long long cfg[2] = {PERF_COUNT_HW_INSTRUCTIONS, PERF_COUNT_HW_CPU_CYCLES};
    for (int i = 0; i < 2; ++i) {
        struct perf_event_attr a;
        memset(&a, 0, sizeof(a));
        a.type = PERF_TYPE_HARDWARE;
        a.size = sizeof(a);
        a.config = cfg[i];
        a.disabled = 1;
        a.exclude_kernel = 1;
        a.exclude_hv = 1;
        g_perf_fd[i] = (int)syscall(__NR_perf_event_open, &a, 0, -1, -1, 0);
        if (g_perf_fd[i] < 0) {
            snprintf(g_perf_note, sizeof(g_perf_note), "perf_event_open: %s", strerror(errno));
            if (i == 1) close(g_perf_fd[0]);
            g_perf_fd[0] = g_perf_fd[1] = -1;
            return;
        }
    }
    snprintf(g_perf_note, sizeof(g_perf_note), "available (calling thread, user mode)");
#else
    snprintf(g_perf_note, sizeof(g_perf_note), "not Linux");
#endif
}

/* ---- timing ---------------------------------------------------------------------------------- */

typedef void (*bench_fn)(void *ctx);

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    double tmin, tmed;      /* seconds per call */
    long calls;             /* calls per repeat */
    double instr, cycles;   /* per call from perf (1 thread), or -1 */
} timing;

/* Time fn: calls per repeat chosen so a repeat lasts about min_time; min and median of repeats. */
static timing time_fn(bench_fn fn, void *ctx, int perf)
{
    const double min_time = g_size == SIZE_TINY ? 1e-4 : (g_size == SIZE_QUICK ? 0.01 : 0.05);
    const int repeats = g_size == SIZE_TINY ? 1 : (g_size == SIZE_QUICK ? 5 : 9);
    timing r = {0, 0, 1, -1, -1};
    double t0 = parml_now();
    fn(ctx);                                  /* warm: pool threads, page faults, caches */
    double one = parml_now() - t0;
    if (one < 1e-7) one = 1e-7;
    r.calls = (long)(min_time / one) + 1;
    double ts[16];
    for (int rep = 0; rep < repeats; ++rep) {
        t0 = parml_now();
        for (long i = 0; i < r.calls; ++i) fn(ctx);
        ts[rep] = (parml_now() - t0) / (double)r.calls;
    }
    qsort(ts, (size_t)repeats, sizeof(double), cmp_double);
    r.tmin = ts[0];
    r.tmed = ts[repeats / 2];
#ifdef __linux__
    if (perf && g_perf_fd[0] >= 0) {
        long long v[2];
        for (int i = 0; i < 2; ++i) {
            ioctl(g_perf_fd[i], PERF_EVENT_IOC_RESET, 0);
            ioctl(g_perf_fd[i], PERF_EVENT_IOC_ENABLE, 0);
        }
        for (long i = 0; i < r.calls; ++i) fn(ctx);
        for (int i = 0; i < 2; ++i) {
            ioctl(g_perf_fd[i], PERF_EVENT_IOC_DISABLE, 0);
            if (read(g_perf_fd[i], &v[i], sizeof(v[i])) != (ssize_t)sizeof(v[i])) v[i] = -1;
        }
        if (v[0] >= 0 && v[1] >= 0) {
            r.instr = (double)v[0] / (double)r.calls;
            r.cycles = (double)v[1] / (double)r.calls;
        }
    }
#else
    (void)perf;
#endif
    return r;
}

/* One JSON row. rate: units per second; pct_base: the peak it is a fraction of (0: none);
 * iters: inner iterations per call (for cycles per iteration). */
static void emit(const char *kernel, int set, const char *dtype, int threads, const char *shape,
                 const timing *t, double work, const char *unit, double pct_base,
                 const char *pct_of, double iters, const char *iter, const char *check)
{
    const double rate = work / t->tmin;
    printf("%s\n  {\"kernel\": \"%s\", \"set\": \"%s\", \"dtype\": \"%s\", \"threads\": %d, "
           "\"shape\": \"%s\", \"calls\": %ld, \"t_min\": %.6e, \"t_median\": %.6e, "
           "\"rate\": %.6g, \"unit\": \"%s\", ",
           g_rows ? "," : "", kernel, parml_kernel_set_name(set), dtype, threads, shape, t->calls,
           t->tmin, t->tmed, rate, unit);
    if (pct_base > 0) printf("\"pct\": %.2f, \"pct_of\": \"%s\", ", 100.0 * rate / pct_base, pct_of);
    else printf("\"pct\": null, \"pct_of\": null, ");
    if (g_hz > 0) printf("\"cycles_per_iter\": %.4g, ", t->tmin * g_hz / iters);
    else printf("\"cycles_per_iter\": null, ");
    if (t->instr >= 0)
        printf("\"instr_per_iter\": %.4g, \"perf_cycles_per_iter\": %.4g, ", t->instr / iters,
               t->cycles / iters);
    else printf("\"instr_per_iter\": null, \"perf_cycles_per_iter\": null, ");
    printf("\"iter\": \"%s\", \"check\": \"%s\"}", iter, check);
    fflush(stdout);
    g_rows++;
    fprintf(stderr, ".");
}

/* ---- data ------------------------------------------------------------------------------------ */

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

static double urand(void)   /* [-1, 1) */
{
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(g_rng >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

static void *xmalloc(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (p == NULL) {
        fprintf(stderr, "parml_bench: out of memory (%zu bytes)\n", n);
        exit(3);
    }
    return p;
}

static void fail(char *check, size_t n, const char *what)
{
    snprintf(check, n, "FAIL: %s", what);
    g_failures++;
}

/* ---- micro-kernel alone ---------------------------------------------------------------------- */

typedef struct {
    int f32, mr, nr;
    ptrdiff_t kc;
    const void *a, *b;
    void *c;
    const parml_kernel_d *kd;
    const parml_kernel_s *ks;
} ukr_ctx;

static void ukr_call(void *v)
{
    ukr_ctx *x = (ukr_ctx *)v;
    for (int r = 0; r < 16; ++r) {   /* 16 tiles per call: the call overhead stays out */
        if (x->f32) x->ks->fn(x->kc, (const float *)x->a, (const float *)x->b, x->nr, (float *)x->c,
                              x->nr, x->mr, x->nr, 0);
        else x->kd->fn(x->kc, (const double *)x->a, (const double *)x->b, x->nr, (double *)x->c,
                       x->nr, x->mr, x->nr, 0);
    }
}

static double fma_peak(int set);

static void bench_ukr(int set, int f32, double *peak64)
{
    ukr_ctx x;
    memset(&x, 0, sizeof(x));
    x.f32 = f32;
    x.kd = &parml_kernels_d[set];
    x.ks = &parml_kernels_s[set];
    x.mr = f32 ? x.ks->mr : x.kd->mr;
    x.nr = f32 ? x.ks->nr : x.kd->nr;
    const size_t es = f32 ? 4 : 8;
    /* copies of each element in a packed A panel (gemm_ukr.h) */
    const int lanes = f32 ? PARML_A_LANES(x.ks) : PARML_A_LANES(x.kd);
    /* packed A (kc x mr x lanes) and B (kc x nr) within 24 KiB: L1-resident on every core we
     * target */
    x.kc = (ptrdiff_t)(24576 / ((size_t)(x.mr * lanes + x.nr) * es));
    if (x.kc > 256) x.kc = 256;
    double *ad = (double *)xmalloc((size_t)x.kc * x.mr * 8), *bd = (double *)xmalloc((size_t)x.kc * x.nr * 8);
    void *a = xmalloc((size_t)x.kc * x.mr * lanes * es), *b = xmalloc((size_t)x.kc * x.nr * es);
    void *c = xmalloc((size_t)x.mr * x.nr * es);
    for (ptrdiff_t i = 0; i < x.kc * x.mr; ++i) {
        ad[i] = urand();
        for (int l = 0; l < lanes; ++l)
            if (f32) ((float *)a)[i * lanes + l] = (float)ad[i];
            else ((double *)a)[i * lanes + l] = ad[i];
        if (f32) ad[i] = ((float *)a)[i * lanes];
    }
    for (ptrdiff_t i = 0; i < x.kc * x.nr; ++i) {
        bd[i] = urand();
        if (f32) ((float *)b)[i] = (float)bd[i]; else ((double *)b)[i] = bd[i];
        if (f32) bd[i] = ((float *)b)[i];
    }
    x.a = a; x.b = b; x.c = c;
    ukr_call(&x);
    char check[96] = "ok";
    for (int i = 0; i < x.mr && check[0] == 'o'; ++i)
        for (int j = 0; j < x.nr; ++j) {
            double s = 0, sa = 0;
            for (ptrdiff_t p = 0; p < x.kc; ++p) {
                s += ad[p * x.mr + i] * bd[p * x.nr + j];
                sa += fabs(ad[p * x.mr + i] * bd[p * x.nr + j]);
            }
            const double got = f32 ? ((float *)c)[i * x.nr + j] : ((double *)c)[i * x.nr + j];
            if (!(fabs(got - s) <= (f32 ? 1e-5 : 1e-13) * (sa + 1.0))) {
                fail(check, sizeof(check), "micro-kernel tile differs from the naive sum");
                break;
            }
        }
    /* the peak and the kernel in turns, best of each: on a shared machine either can land in a
     * slow moment, and a low peak must not flatter the kernel nor a slow kernel run hide it */
    timing t = time_fn(ukr_call, &x, 1);
    for (int round = 0; round < (g_size == SIZE_TINY ? 1 : 3); ++round) {
        const double p = fma_peak(set);
        *peak64 = p > *peak64 ? p : *peak64;
        const timing u = time_fn(ukr_call, &x, 1);
        if (u.tmin < t.tmin) t = u;
    }
    char shape[64];
    snprintf(shape, sizeof(shape), "%dx%d tile, k=%td", x.mr, x.nr, x.kc);
    const double flops = 16.0 * 2.0 * x.mr * x.nr * (double)x.kc;
    emit("ukr", set, f32 ? "float32" : "float64", 1, shape, &t, flops / 1e9, "GFLOP/s",
         (f32 ? 2.0 : 1.0) * *peak64 / 1e9, "FMA peak", 16.0 * (double)x.kc,
         "k step (one rank-1 update of the tile)", check);
    free(ad); free(bd); free(a); free(b); free(c);
}

/* ---- GEMM ------------------------------------------------------------------------------------ */

typedef struct {
    int f32, nt;
    ptrdiff_t m, n, k, rs_a, cs_a, rs_b, cs_b;
    const void *a, *b;
    void *c;
} gemm_ctx;

static void gemm_call(void *v)
{
    gemm_ctx *x = (gemm_ctx *)v;
    if (x->f32) parml_gemm_f32(x->m, x->n, x->k, (const float *)x->a, x->rs_a, x->cs_a,
                               (const float *)x->b, x->rs_b, x->cs_b, (float *)x->c, x->n, x->nt);
    else parml_gemm_f64(x->m, x->n, x->k, (const double *)x->a, x->rs_a, x->cs_a,
                        (const double *)x->b, x->rs_b, x->cs_b, (double *)x->c, x->n, x->nt);
}

static double elem(const void *p, int f32, ptrdiff_t i)
{
    return f32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

static void bench_gemm(int set, int f32, const char *name, ptrdiff_t m, ptrdiff_t k, ptrdiff_t n,
                       int ta, int tb, const int *threads, int nthr, double peak64)
{
    const size_t es = f32 ? 4 : 8;
    gemm_ctx x;
    x.f32 = f32; x.m = m; x.n = n; x.k = k;
    void *a = xmalloc((size_t)(m * k) * es), *b = xmalloc((size_t)(k * n) * es);
    void *c = xmalloc((size_t)(m * n) * es);
    for (ptrdiff_t i = 0; i < m * k; ++i) {
        if (f32) ((float *)a)[i] = (float)urand(); else ((double *)a)[i] = urand();
    }
    for (ptrdiff_t i = 0; i < k * n; ++i) {
        if (f32) ((float *)b)[i] = (float)urand(); else ((double *)b)[i] = urand();
    }
    /* A transposed: stored k x m (A's element (i, p) at p*m + i); B transposed: stored n x k */
    x.rs_a = ta ? 1 : k; x.cs_a = ta ? m : 1;
    x.rs_b = tb ? 1 : n; x.cs_b = tb ? k : 1;
    x.a = a; x.b = b; x.c = c;
    for (int ti = 0; ti < nthr; ++ti) {
        x.nt = threads[ti];
        memset(c, 0xff, (size_t)(m * n) * es);   /* NaN: an element left unwritten fails */
        gemm_call(&x);
#ifdef PARML_BENCH_FAULT
        /* tests build with this defined to see that a wrong result fails the run */
        if (f32) ((float *)c)[(m * n) / 2] += 1.0f; else ((double *)c)[(m * n) / 2] += 1.0;
#endif
        char check[96] = "ok";
        /* every element when small, else 256 sampled elements (the middle one always), against
         * a naive float64 sum */
        const int full = (double)m * n * k <= 1 << 24;
        const ptrdiff_t nchk = full ? m * n : 256;
        for (ptrdiff_t q = 0; q < nchk; ++q) {
            const ptrdiff_t mid = (m * n) / 2;
            const ptrdiff_t i = full ? q / n : (q == 0 ? mid / n : (ptrdiff_t)((urand() + 1) * 0.5 * m) % m);
            const ptrdiff_t j = full ? q % n : (q == 0 ? mid % n : (ptrdiff_t)((urand() + 1) * 0.5 * n) % n);
            double s = 0, sa = 0;
            for (ptrdiff_t p = 0; p < k; ++p) {
                const double t = elem(a, f32, i * x.rs_a + p * x.cs_a) * elem(b, f32, p * x.rs_b + j * x.cs_b);
                s += t;
                sa += fabs(t);
            }
            const double got = elem(c, f32, i * n + j);
            if (!(fabs(got - s) <= (f32 ? 2e-6 : 1e-14) * (double)(k + 4) * (sa + 1e-300))) {
                fail(check, sizeof(check), "GEMM element differs from the naive sum");
                break;
            }
        }
        const timing t = time_fn(gemm_call, &x, x.nt == 1);
        char shape[96];
        snprintf(shape, sizeof(shape), "%s %tdx%td@%tdx%td%s%s", name, m, k, k, n,
                 ta ? " A^T" : "", tb ? " B^T" : "");
        emit("gemm", set, f32 ? "float32" : "float64", x.nt, shape, &t,
             2.0 * m * n * (double)k / 1e9, "GFLOP/s", (f32 ? 2.0 : 1.0) * peak64 * x.nt / 1e9,
             "FMA peak", (double)m * n * k, "multiply-add", check);
    }
    free(a); free(b); free(c);
}

/* ---- element-wise add ------------------------------------------------------------------------ */

typedef struct { int f32, nt; ptrdiff_t n; void *a, *b, *o; } add_ctx;

static void add_call(void *v)
{
    add_ctx *x = (add_ctx *)v;
    if (x->f32) parml_add_f32(x->n, (float *)x->a, (float *)x->b, (float *)x->o, x->nt);
    else parml_add_f64(x->n, (double *)x->a, (double *)x->b, (double *)x->o, x->nt);
}

static void bench_add(int set, int f32, const int *threads, int nthr)
{
    add_ctx x;
    const size_t es = f32 ? 4 : 8;
    x.f32 = f32;
    /* 3 x 128 MiB (float64): far beyond any L3 we run on */
    x.n = g_size == SIZE_TINY ? 100000 : (ptrdiff_t)1 << 24;
    x.a = xmalloc((size_t)x.n * es); x.b = xmalloc((size_t)x.n * es); x.o = xmalloc((size_t)x.n * es);
    for (ptrdiff_t i = 0; i < x.n; ++i) {
        if (f32) { ((float *)x.a)[i] = (float)urand(); ((float *)x.b)[i] = (float)urand(); }
        else { ((double *)x.a)[i] = urand(); ((double *)x.b)[i] = urand(); }
    }
    for (int ti = 0; ti < nthr; ++ti) {
        x.nt = threads[ti];
        add_call(&x);
        char check[96] = "ok";
        for (ptrdiff_t i = 0; i < x.n; ++i) {
            const int bad = f32 ? ((float *)x.o)[i] != ((float *)x.a)[i] + ((float *)x.b)[i]
                                : ((double *)x.o)[i] != ((double *)x.a)[i] + ((double *)x.b)[i];
            if (bad) { fail(check, sizeof(check), "sum differs"); break; }
        }
        const timing t = time_fn(add_call, &x, x.nt == 1);
        char shape[64];
        snprintf(shape, sizeof(shape), "n=%td", x.n);
        emit("add", set, f32 ? "float32" : "float64", x.nt, shape, &t, 3.0 * x.n * es / 1e9, "GB/s",
             g_read_bw[x.nt > 1] / 1e9, "read bandwidth", (double)x.n, "element", check);
    }
    free(x.a); free(x.b); free(x.o);
}

/* ---- fused logistic loss + gradient ---------------------------------------------------------- */

typedef struct { parml_linear_problem p; double *out; int nt; } lin_ctx;

static void lin_call(void *v)
{
    lin_ctx *x = (lin_ctx *)v;
    parml_linear_loss_grad(&x->p, x->out, x->nt);
}

static void bench_linear(int set, int f32, const int *threads, int nthr)
{
    /* 160 MB of float64 rows: read from memory, as a fit over a large data set is */
    const ptrdiff_t n = g_size == SIZE_TINY ? 600 : 200000, d = 100;
    const size_t es = f32 ? 4 : 8;
    void *X = xmalloc((size_t)(n * d) * es);
    double *y = (double *)xmalloc((size_t)n * 8), *W = (double *)xmalloc((size_t)d * 8);
    double b = 0.1, *out = (double *)xmalloc((size_t)(d + 2) * 8), *ref = (double *)xmalloc((size_t)(d + 2) * 8);
    for (ptrdiff_t i = 0; i < n * d; ++i) {
        if (f32) ((float *)X)[i] = (float)urand(); else ((double *)X)[i] = urand();
    }
    for (ptrdiff_t i = 0; i < n; ++i) y[i] = urand() > 0 ? 1.0 : -1.0;
    for (ptrdiff_t j = 0; j < d; ++j) W[j] = 0.2 * urand();
    /* naive: loss = sum log(1 + exp(-y z)), grad = sum -y sigmoid(-y z) x */
    memset(ref, 0, (size_t)(d + 2) * 8);
    for (ptrdiff_t i = 0; i < n; ++i) {
        double z = b;
        for (ptrdiff_t j = 0; j < d; ++j) z += elem(X, f32, i * d + j) * W[j];
        const double mz = -y[i] * z;
        const double dl = -y[i] / (1.0 + exp(-mz));
        ref[d + 1] += mz > 0 ? mz + log1p(exp(-mz)) : log1p(exp(mz));
        ref[d] += dl;
        for (ptrdiff_t j = 0; j < d; ++j) ref[j] += dl * elem(X, f32, i * d + j);
    }
    lin_ctx x;
    memset(&x, 0, sizeof(x));
    x.p.X = X; x.p.dtype = f32 ? PARML_FLOAT32 : PARML_FLOAT64;
    x.p.n = n; x.p.d = d; x.p.ldx = d; x.p.y = y; x.p.W = W; x.p.b = &b; x.p.K = 1;
    x.p.loss = PARML_L_LOG;
    x.out = out;
    for (int ti = 0; ti < nthr; ++ti) {
        x.nt = threads[ti];
        char check[96] = "ok";
        if (parml_linear_loss_grad(&x.p, out, x.nt) != PARML_OK)
            fail(check, sizeof(check), "parml_linear_loss_grad returned an error");
        double scale = 0;
        for (ptrdiff_t j = 0; j < d + 2; ++j) scale = fmax(scale, fabs(ref[j]));
        for (ptrdiff_t j = 0; j < d + 2 && check[0] == 'o'; ++j)
            if (!(fabs(out[j] - ref[j]) <= 1e-9 * (scale + 1.0)))
                fail(check, sizeof(check), "loss or gradient differs from the naive loop");
        const timing t = time_fn(lin_call, &x, x.nt == 1);
        char shape[64];
        snprintf(shape, sizeof(shape), "log loss %tdx%td", n, d);
        emit("linear", set, f32 ? "float32" : "float64", x.nt, shape, &t, (double)(n * d) * es / 1e9,
             "GB/s", g_read_bw[x.nt > 1] / 1e9, "read bandwidth", (double)n, "row", check);
    }
    free(X); free(y); free(W); free(out); free(ref);
}

/* ---- gradient histograms --------------------------------------------------------------------- */

typedef struct { const uint8_t *B; ptrdiff_t n, d; const float *g, *h; parml_hbin *hist; int nt; } hist_ctx;

static void hist_call(void *v)
{
    hist_ctx *x = (hist_ctx *)v;
    parml_histogram(x->B, x->n, x->d, NULL, x->n, x->g, x->h, 256, x->hist, x->nt);
}

static void bench_hist(int set, const int *threads, int nthr)
{
    hist_ctx x;
    x.n = g_size == SIZE_TINY ? 3000 : (g_size == SIZE_QUICK ? 250000 : 1000000);
    x.d = 28;
    uint8_t *B = (uint8_t *)xmalloc((size_t)(x.n * x.d));
    float *g = (float *)xmalloc((size_t)x.n * 4), *h = (float *)xmalloc((size_t)x.n * 4);
    parml_hbin *hist = (parml_hbin *)xmalloc((size_t)x.d * 256 * sizeof(parml_hbin));
    parml_hbin *ref = (parml_hbin *)xmalloc((size_t)x.d * 256 * sizeof(parml_hbin));
    for (ptrdiff_t i = 0; i < x.n * x.d; ++i) B[i] = (uint8_t)((urand() + 1) * 127.99);
    for (ptrdiff_t i = 0; i < x.n; ++i) { g[i] = (float)urand(); h[i] = (float)(urand() + 1.5); }
    memset(ref, 0, (size_t)x.d * 256 * sizeof(parml_hbin));
    for (ptrdiff_t f = 0; f < x.d; ++f)
        for (ptrdiff_t i = 0; i < x.n; ++i) {
            parml_hbin *e = ref + f * 256 + B[f * x.n + i];
            e->g += (double)g[i];
            e->h += (double)h[i];
            e->count += 1;
        }
    x.B = B; x.g = g; x.h = h; x.hist = hist;
    for (int ti = 0; ti < nthr; ++ti) {
        x.nt = threads[ti];
        hist_call(&x);
        char check[96] = "ok";
        for (ptrdiff_t q = 0; q < x.d * 256; ++q)
            if (hist[q].g != ref[q].g || hist[q].h != ref[q].h || hist[q].count != ref[q].count) {
                fail(check, sizeof(check), "histogram differs from the naive loop (exact)");
                break;
            }
        const timing t = time_fn(hist_call, &x, x.nt == 1);
        char shape[64];
        snprintf(shape, sizeof(shape), "%td rows x %td features, 256 bins", x.n, x.d);
        emit("hist", set, "float32", x.nt, shape, &t, (double)(x.n * x.d) / 1e9, "G updates/s", 0,
             "", (double)(x.n * x.d), "bin update (row, feature)", check);
    }
    free(B); free(g); free(h); free(hist); free(ref);
}

/* ---- forest prediction ----------------------------------------------------------------------- */

typedef struct { parml_forest f; const double *X; ptrdiff_t n, d; double *out; int nt; } pred_ctx;

static void pred_call(void *v)
{
    pred_ctx *x = (pred_ctx *)v;
    parml_forest_predict(&x->f, x->X, PARML_FLOAT64, x->n, x->d, x->d, x->out, x->nt);
}

static void bench_predict(int set, const int *threads, int nthr)
{
    const ptrdiff_t T = 100, depth = 6, per = ((ptrdiff_t)1 << (depth + 1)) - 1, d = 28;
    const ptrdiff_t n = g_size == SIZE_TINY ? 500 : (g_size == SIZE_QUICK ? 20000 : 100000);
    const ptrdiff_t nn = T * per;
    int32_t *fe = (int32_t *)xmalloc((size_t)nn * 4), *le = (int32_t *)xmalloc((size_t)nn * 4);
    int32_t *ri = (int32_t *)xmalloc((size_t)nn * 4), *to = (int32_t *)xmalloc((size_t)T * 4);
    double *th = (double *)xmalloc((size_t)nn * 8), *va = (double *)xmalloc((size_t)nn * 8);
    uint8_t *ml = (uint8_t *)xmalloc((size_t)nn);
    int64_t *ro = (int64_t *)xmalloc((size_t)T * 8);
    for (ptrdiff_t t = 0; t < T; ++t) {     /* complete trees in heap order: children adjacent */
        ro[t] = t * per;
        to[t] = 0;
        for (ptrdiff_t j = 0; j < per; ++j) {
            const ptrdiff_t g = t * per + j;
            const int leaf = 2 * j + 1 >= per;
            fe[g] = leaf ? 0 : (int32_t)((urand() + 1) * 0.5 * d) % (int32_t)d;
            th[g] = leaf ? 0.0 : 0.8 * urand();
            ml[g] = urand() > 0;
            le[g] = leaf ? -1 : (int32_t)(2 * j + 1);
            ri[g] = leaf ? -1 : (int32_t)(2 * j + 2);
            va[g] = leaf ? 0.01 * urand() : 0.0;
        }
    }
    double *X = (double *)xmalloc((size_t)(n * d) * 8);
    double *out = (double *)xmalloc((size_t)n * 8), *ref = (double *)xmalloc((size_t)n * 8);
    for (ptrdiff_t i = 0; i < n * d; ++i) X[i] = urand();
    for (ptrdiff_t i = 0; i < n; ++i) {
        double s = 0;
        for (ptrdiff_t t = 0; t < T; ++t) {
            ptrdiff_t j = 0;
            while (le[t * per + j] >= 0) {
                const ptrdiff_t g = t * per + j;
                const double v = X[i * d + fe[g]];
                j = (v != v ? ml[g] : v <= th[g]) ? le[g] : ri[g];
            }
            s += va[t * per + j];
        }
        ref[i] = s;
    }
    pred_ctx x;
    memset(&x, 0, sizeof(x));
    x.f.n_nodes = nn; x.f.n_trees = T; x.f.n_outputs = 1; x.f.value_width = 1;
    x.f.feature = fe; x.f.threshold = th; x.f.missing_left = ml; x.f.left = le; x.f.right = ri;
    x.f.value = va; x.f.roots = ro; x.f.tree_output = to;
    x.X = X; x.n = n; x.d = d; x.out = out;
    for (int ti = 0; ti < nthr; ++ti) {
        x.nt = threads[ti];
        char check[96] = "ok";
        memset(out, 0, (size_t)n * 8);
        if (parml_forest_predict(&x.f, X, PARML_FLOAT64, n, d, d, out, x.nt) != PARML_OK)
            fail(check, sizeof(check), "parml_forest_predict returned an error");
        for (ptrdiff_t i = 0; i < n && check[0] == 'o'; ++i)
            if (out[i] != ref[i]) fail(check, sizeof(check), "prediction differs from the naive walk (exact)");
        const timing t = time_fn(pred_call, &x, x.nt == 1);   /* (adds into out: values only grow) */
        char shape[64];
        snprintf(shape, sizeof(shape), "%td rows, %td trees of depth %td", n, T, depth);
        emit("predict", set, "float64", x.nt, shape, &t, (double)(n * T) / 1e9, "G row-trees/s", 0,
             "", (double)(n * T), "row through one tree", check);
    }
    free(fe); free(le); free(ri); free(to); free(th); free(va); free(ml); free(ro);
    free(X); free(out); free(ref);
}

/* Double-precision FLOP/s of one core with the set's widest FMA (probe.h): best of 3 runs of
 * ~25 ms (tiny: ~1 ms). Single precision is taken as twice this (the same FMA rate on twice
 * the lanes, on every core we target). */
static double fma_peak(int set)
{
    const long iters = g_size == SIZE_TINY ? 100000 : 2000000;
    double best = 0;
    for (int r = 0; r < 3; ++r) {
        const double p = parml_fma_peak(set, iters);
        best = p > best ? p : best;
    }
    return best;
}

/* ---- main ------------------------------------------------------------------------------------ */

static int want(const char *only, const char *name)
{
    return only == NULL || strcmp(only, name) == 0;
}

static int usage(const char *msg)
{
    fprintf(stderr, "parml_bench: %s\nusage: parml_bench [--quick | --tiny] [--isa SET] "
            "[--kernel ukr|gemm|add|linear|hist|predict] [--threads N]\n", msg);
    return 2;
}

int main(int argc, char **argv)
{
    const char *isa = NULL, *only = NULL;
    int threads_max = parml_default_threads();
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--quick") == 0) g_size = SIZE_QUICK;
        else if (strcmp(argv[i], "--tiny") == 0) g_size = SIZE_TINY;
        else if (strcmp(argv[i], "--isa") == 0 && i + 1 < argc) isa = argv[++i];
        else if (strcmp(argv[i], "--kernel") == 0 && i + 1 < argc) only = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads_max = atoi(argv[++i]);
        else return usage("unknown argument");
    }
    static const char *kernels[] = {"ukr", "gemm", "add", "linear", "hist", "predict"};
    int known = only == NULL;
    for (int i = 0; i < 6; ++i) known |= only != NULL && strcmp(only, kernels[i]) == 0;
    if (!known) return usage("unknown --kernel (ukr, gemm, add, linear, hist, predict)");
    if (threads_max < 1) return usage("--threads must be at least 1");
    int sets[PARML_N_SETS], nsets = 0;
    for (int s = 0; s < PARML_N_SETS; ++s) {
        if (isa != NULL && strcmp(isa, parml_set_names[s]) != 0) continue;
        if (parml_set_supported(s)) sets[nsets++] = s;
        else if (isa != NULL) {
            fprintf(stderr, "parml_bench: this CPU or build has no %s kernel set\n", isa);
            return 2;
        }
    }
    if (nsets == 0) return usage("unknown --isa (generic, avx2, avx512, neon)");
    int threads[2] = {1, threads_max}, nthr = threads_max > 1 ? 2 : 1;
    g_max_threads = threads_max;

    parml_kernel_set();
    g_hz = clock_hz();
    perf_setup();
    {   /* read bandwidth: a buffer far beyond the caches, 1 and max threads, best of 3 */
        const ptrdiff_t words = g_size == SIZE_TINY ? (ptrdiff_t)1 << 20 : (ptrdiff_t)1 << 25;
        uint64_t *buf = (uint64_t *)xmalloc((size_t)words * 8), sink = 0;
        for (ptrdiff_t i = 0; i < words; ++i) buf[i] = (uint64_t)i;
        for (int k = 0; k < nthr; ++k) {
            double best = 1e30;
            for (int r = 0; r < 3; ++r) {
                const double t = parml_read_probe(buf, words, threads[k], &sink);
                best = t < best ? t : best;
            }
            g_read_bw[k] = (double)words * 8 / best;
        }
        if (nthr == 1) g_read_bw[1] = g_read_bw[0];
        free(buf);
        if (sink == 42) fprintf(stderr, " ");
    }
    fprintf(stderr, "\n");
    printf("{\"api_version\": %d, \"threads\": [%d", PARML_API_VERSION, threads[0]);
    if (nthr > 1) printf(", %d", threads[1]);
    printf("], \"clock_ghz\": %.4g, \"read_gbs\": [%.4g, %.4g], \"perf\": \"%s\",\n \"rows\": [",
           g_hz / 1e9, g_read_bw[0] / 1e9, g_read_bw[1] / 1e9, g_perf_note);
    double peaks[PARML_N_SETS];
    for (int i = 0; i < nsets; ++i) peaks[sets[i]] = fma_peak(sets[i]);
    static const struct { const char *name; ptrdiff_t m, k, n; int ta, tb; } mlp[] = {
        {"fwd", 256, 100, 256, 0, 0}, {"fwd", 256, 256, 128, 0, 0}, {"fwd", 256, 128, 10, 0, 0},
        {"dW", 128, 256, 10, 1, 0}, {"dX", 256, 10, 128, 0, 1}, {"dX", 256, 128, 256, 0, 1},
    };
    const ptrdiff_t sq_full[] = {64, 128, 256, 512, 1024, 2048}, sq_quick[] = {64, 128, 256, 512};
    const ptrdiff_t sq_tiny[] = {17, 64};
    const ptrdiff_t *sq = g_size == SIZE_FULL ? sq_full : (g_size == SIZE_QUICK ? sq_quick : sq_tiny);
    const int nsq = g_size == SIZE_FULL ? 6 : (g_size == SIZE_QUICK ? 4 : 2);
    for (int si = 0; si < nsets; ++si) {
        const int s = sets[si];
        parml_use_kernel_set(s);
        fprintf(stderr, "%s ", parml_set_names[s]);
        for (int f32 = 0; f32 < 2; ++f32) {
            if (want(only, "ukr")) bench_ukr(s, f32, &peaks[s]);
            if (want(only, "gemm")) {
                for (int q = 0; q < nsq; ++q)
                    bench_gemm(s, f32, "square", sq[q], sq[q], sq[q], 0, 0, threads, nthr, peaks[s]);
                for (int q = 0; q < (g_size == SIZE_TINY ? 2 : 6); ++q)
                    bench_gemm(s, f32, mlp[q].name, mlp[q].m, mlp[q].k, mlp[q].n, mlp[q].ta,
                               mlp[q].tb, threads, nthr, peaks[s]);
            }
            if (want(only, "add")) bench_add(s, f32, threads, nthr);
            if (want(only, "linear")) bench_linear(s, f32, threads, nthr);
        }
        if (want(only, "hist")) bench_hist(s, threads, nthr);
        if (want(only, "predict")) bench_predict(s, threads, nthr);
    }
    printf("\n ],\n \"peak_gflops_f64\": {");
    for (int i = 0; i < nsets; ++i)
        printf("%s\"%s\": %.4g", i ? ", " : "", parml_set_names[sets[i]], peaks[sets[i]] / 1e9);
    printf("},\n \"failures\": %d}\n", g_failures);
    fprintf(stderr, "\n");
    return g_failures ? 1 : 0;
}
