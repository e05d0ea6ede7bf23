/* Tests of the C API (parml.h) from a C program built against the installed headers: GEMM on
 * edge shapes and layouts against a naive loop, every kernel set this CPU supports, 1 and 3
 * threads; the other entry points against naive loops; bad arguments give PARML_EINVAL.
 *
 *   test_c_api                      the built-in edge shapes, the other kernels, bad arguments
 *   test_c_api m,n,k,ta,tb ...      GEMM on those shapes only (ta/tb: A/B transposed views)
 *
 * Prints one line per failure and "ok N" at the end; exit status 1 on any failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <parml/parml.h>

static int failures = 0, checks = 0;

#define EXPECT(cond, ...)                                                                         \
    do {                                                                                          \
        ++checks;                                                                                 \
        if (!(cond)) {                                                                            \
            ++failures;                                                                           \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                           \
            printf(__VA_ARGS__);                                                                  \
            printf("\n");                                                                         \
        }                                                                                         \
    } while (0)

static unsigned long long rng = 12345;
static double urand(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

/* C = A B through the API in both precisions, against a float64 naive sum. */
static void check_gemm(int set, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, int ta, int tb, int nt)
{
    const ptrdiff_t rs_a = ta ? 1 : k, cs_a = ta ? m : 1, rs_b = tb ? 1 : n, cs_b = tb ? k : 1;
    const ptrdiff_t rs_c = n + 3;   /* padded rows: C's row stride is honoured, padding kept */
    double *ad = (double *)malloc(sizeof(double) * (size_t)(m * k + 1));
    double *bd = (double *)malloc(sizeof(double) * (size_t)(k * n + 1));
    float *as = (float *)malloc(sizeof(float) * (size_t)(m * k + 1));
    float *bs = (float *)malloc(sizeof(float) * (size_t)(k * n + 1));
    double *cd = (double *)malloc(sizeof(double) * (size_t)(m * rs_c + 1));
    float *cs = (float *)malloc(sizeof(float) * (size_t)(m * rs_c + 1));
    for (ptrdiff_t i = 0; i < m * k; ++i) as[i] = (float)(ad[i] = (double)(float)urand());
    for (ptrdiff_t i = 0; i < k * n; ++i) bs[i] = (float)(bd[i] = (double)(float)urand());
    for (ptrdiff_t i = 0; i < m * rs_c; ++i) { cd[i] = 7.0; cs[i] = 7.0f; }
    EXPECT(parml_gemm_f64(m, n, k, ad, rs_a, cs_a, bd, rs_b, cs_b, cd, rs_c, nt) == PARML_OK,
           "gemm_f64 rc");
    EXPECT(parml_gemm_f32(m, n, k, as, rs_a, cs_a, bs, rs_b, cs_b, cs, rs_c, nt) == PARML_OK,
           "gemm_f32 rc");
    int bad_d = 0, bad_s = 0, bad_pad = 0;
    for (ptrdiff_t i = 0; i < m; ++i) {
        for (ptrdiff_t j = 0; j < n; ++j) {
            double s = 0, sa = 0;
            for (ptrdiff_t p = 0; p < k; ++p) {
                const double t = ad[i * rs_a + p * cs_a] * bd[p * rs_b + j * cs_b];
                s += t;
                sa += fabs(t);
            }
            bad_d += !(fabs(cd[i * rs_c + j] - s) <= 1e-14 * (double)(k + 4) * sa);
            bad_s += !(fabs((double)cs[i * rs_c + j] - s) <= 2e-6 * (double)(k + 4) * sa);
        }
        for (ptrdiff_t j = n; j < rs_c; ++j) bad_pad += cd[i * rs_c + j] != 7.0 || cs[i * rs_c + j] != 7.0f;
    }
    EXPECT(!bad_d && !bad_s && !bad_pad,
           "gemm %s m=%td n=%td k=%td ta=%d tb=%d threads=%d: %d float64 and %d float32 elements "
           "wrong, %d padding elements written", parml_kernel_set_name(set), m, n, k, ta, tb, nt,
           bad_d, bad_s, bad_pad);
    /* the same bits for any thread count */
    double *c1 = (double *)malloc(sizeof(double) * (size_t)(m * rs_c + 1));
    memcpy(c1, cd, sizeof(double) * (size_t)(m * rs_c));
    parml_gemm_f64(m, n, k, ad, rs_a, cs_a, bd, rs_b, cs_b, c1, rs_c, 1);
    EXPECT(memcmp(c1, cd, sizeof(double) * (size_t)(m * rs_c)) == 0,
           "gemm %s m=%td n=%td k=%td: 1 thread and %d threads differ", parml_kernel_set_name(set),
           m, n, k, nt);
    free(ad); free(bd); free(as); free(bs); free(cd); free(cs); free(c1);
}

static void check_bad_arguments(void)
{
    double a[4] = {1, 2, 3, 4}, c[4];
    EXPECT(parml_gemm_f64(-1, 2, 2, a, 2, 1, a, 2, 1, c, 2, 1) == PARML_EINVAL, "negative m");
    EXPECT(parml_gemm_f64(2, 2, 2, a, 2, 1, a, 2, 1, c, 1, 1) == PARML_EINVAL, "rs_c < n");
    EXPECT(parml_gemm_f64(2, 2, 2, NULL, 2, 1, a, 2, 1, c, 2, 1) == PARML_EINVAL, "NULL a");
    EXPECT(parml_gemm_f64(0, 2, 2, NULL, 2, 1, NULL, 2, 1, NULL, 2, 1) == PARML_OK, "empty product");
    EXPECT(parml_add_f64(-1, a, a, c, 1) == PARML_EINVAL, "negative n");
    EXPECT(parml_use_kernel_set(PARML_N_SETS) == PARML_EINVAL, "unknown set");
    EXPECT(parml_kernel_set_name(-1) == NULL, "name of an unknown set");
    parml_linear_problem p;
    memset(&p, 0, sizeof(p));
    double y[2] = {0, 3}, W[2] = {0, 0}, b[2] = {0, 0}, X[2] = {1, 2}, out[8];
    p.X = X; p.n = 2; p.d = 1; p.ldx = 1; p.y = y; p.W = W; p.b = b; p.K = 2;
    p.loss = PARML_L_MULTINOMIAL;
    EXPECT(parml_linear_loss_grad(&p, out, 1) == PARML_EINVAL, "class index 3 with K = 2");
    p.loss = PARML_N_LOSSES;
    EXPECT(parml_linear_loss_grad(&p, out, 1) == PARML_EINVAL, "unknown loss");
    uint8_t B[4] = {0, 1, 2, 3};
    int32_t rows[2] = {0, 5};
    float g[2] = {1, 1};
    parml_hbin hist[8];
    EXPECT(parml_histogram(B, 2, 2, rows, 2, g, NULL, 4, hist, 1) == PARML_EINVAL, "row 5 of 2");
    EXPECT(parml_histogram(B, 2, 2, NULL, 2, g, NULL, 300, hist, 1) == PARML_EINVAL, "300 bins");
    EXPECT(parml_bins_check(B, 2, 2, 3) == PARML_EINVAL, "bin 3 with 3 bins");
    EXPECT(parml_bins_check(B, 2, 2, 4) == PARML_OK, "bins below 4");
    int32_t fe[3] = {0, 0, 0}, le[3] = {1, -1, -1}, ri[3] = {2, -1, -1}, to[1] = {0};
    double th[3] = {0, 0, 0}, va[3] = {0, 1, 2};
    uint8_t ml[3] = {0, 0, 0};
    int64_t ro[1] = {0};
    parml_forest f = {3, 1, 1, 1, fe, th, ml, le, ri, va, ro, to};
    EXPECT(parml_forest_check(&f, 1) == PARML_OK, "a valid stump");
    le[0] = 0;
    EXPECT(parml_forest_check(&f, 1) == PARML_EINVAL, "a node that is its own child");
    le[0] = 1;
    fe[0] = 4;
    EXPECT(parml_forest_check(&f, 1) == PARML_EINVAL, "feature 4 of 1");
    EXPECT(parml_forest_predict(&f, X, PARML_FLOAT64, 2, 1, 1, out, 1) == PARML_EINVAL,
           "predict with a bad forest");
}

/* add, the logistic loss and gradient, histograms and prediction against naive loops. */
static void check_other_kernels(int set, int nt)
{
    const ptrdiff_t n = 3001, d = 7;
    double *a = (double *)malloc(sizeof(double) * n), *b = (double *)malloc(sizeof(double) * n);
    double *o = (double *)malloc(sizeof(double) * n);
    for (ptrdiff_t i = 0; i < n; ++i) { a[i] = urand(); b[i] = urand(); }
    EXPECT(parml_add_f64(n, a, b, o, nt) == PARML_OK, "add rc");
    int bad = 0;
    for (ptrdiff_t i = 0; i < n; ++i) bad += o[i] != a[i] + b[i];
    EXPECT(!bad, "add %s: %d elements wrong", parml_kernel_set_name(set), bad);

    double *X = (double *)malloc(sizeof(double) * (size_t)(n * d)), *y = (double *)malloc(sizeof(double) * n);
    double W[7], b0 = 0.3, out[9], ref[9] = {0};
    for (ptrdiff_t i = 0; i < n * d; ++i) X[i] = urand();
    for (ptrdiff_t i = 0; i < n; ++i) y[i] = urand() > 0 ? 1 : -1;
    for (int j = 0; j < d; ++j) W[j] = urand();
    for (ptrdiff_t i = 0; i < n; ++i) {
        double z = b0;
        for (int j = 0; j < d; ++j) z += X[i * d + j] * W[j];
        const double dl = -y[i] / (1.0 + exp(y[i] * z));
        ref[d + 1] += log1p(exp(-y[i] * z));
        ref[d] += dl;
        for (int j = 0; j < d; ++j) ref[j] += dl * X[i * d + j];
    }
    parml_linear_problem p;
    memset(&p, 0, sizeof(p));
    p.X = X; p.dtype = PARML_FLOAT64; p.n = n; p.d = d; p.ldx = d; p.y = y; p.W = W; p.b = &b0;
    p.K = 1; p.loss = PARML_L_LOG;
    EXPECT(parml_linear_loss_grad(&p, out, nt) == PARML_OK, "loss_grad rc");
    bad = 0;
    for (int j = 0; j < d + 2; ++j) bad += !(fabs(out[j] - ref[j]) <= 1e-10 * (fabs(ref[j]) + 1));
    EXPECT(!bad, "logistic loss/gradient %s: %d of %d values wrong", parml_kernel_set_name(set),
           bad, (int)d + 2);

    uint8_t *B = (uint8_t *)malloc((size_t)(n * d));
    float *g = (float *)malloc(sizeof(float) * n), *h = (float *)malloc(sizeof(float) * n);
    int32_t *rows = (int32_t *)malloc(sizeof(int32_t) * n);
    parml_hbin hist[7 * 64], href[7 * 64];
    for (ptrdiff_t i = 0; i < n * d; ++i) B[i] = (uint8_t)((urand() + 1) * 31.99);
    ptrdiff_t m = 0;
    for (ptrdiff_t i = 0; i < n; ++i) {
        g[i] = (float)urand();
        h[i] = (float)(urand() + 2);
        if (urand() > -0.2) rows[m++] = (int32_t)i;
    }
    float *og = (float *)malloc(sizeof(float) * m), *oh = (float *)malloc(sizeof(float) * m);
    for (ptrdiff_t i = 0; i < m; ++i) { og[i] = g[rows[i]]; oh[i] = h[rows[i]]; }
    memset(href, 0, sizeof(href));
    for (ptrdiff_t f = 0; f < d; ++f)
        for (ptrdiff_t i = 0; i < m; ++i) {
            parml_hbin *e = href + f * 64 + B[f * n + rows[i]];
            e->g += (double)og[i];
            e->h += (double)oh[i];
            e->count++;
        }
    EXPECT(parml_histogram(B, n, d, rows, m, og, oh, 64, hist, nt) == PARML_OK, "histogram rc");
    bad = 0;
    for (int q = 0; q < 7 * 64; ++q)
        bad += hist[q].g != href[q].g || hist[q].h != href[q].h || hist[q].count != href[q].count;
    EXPECT(!bad, "histogram %s: %d bins differ (exact)", parml_kernel_set_name(set), bad);

    /* two depth-2 trees, the second with a missing value going left */
    int32_t fe[14], le[14], ri[14], to[2] = {0, 0};
    double th[14], va[14];
    uint8_t ml[14];
    int64_t ro[2] = {0, 7};
    for (int t = 0; t < 2; ++t)
        for (int j = 0; j < 7; ++j) {
            const int gi = t * 7 + j, leaf = j >= 3;
            fe[gi] = leaf ? 0 : (j + t) % (int)d;
            th[gi] = leaf ? 0 : 0.3 * urand();
            le[gi] = leaf ? -1 : 2 * j + 1;
            ri[gi] = leaf ? -1 : 2 * j + 2;
            ml[gi] = (uint8_t)t;
            va[gi] = leaf ? urand() : 0;
        }
    X[5 * d + 1] = NAN;
    parml_forest f = {14, 2, 1, 1, fe, th, ml, le, ri, va, ro, to};
    double *pr = (double *)calloc((size_t)n, sizeof(double));
    EXPECT(parml_forest_predict(&f, X, PARML_FLOAT64, n, d, d, pr, nt) == PARML_OK, "predict rc");
    bad = 0;
    for (ptrdiff_t i = 0; i < n; ++i) {
        double s = 0;
        for (int t = 0; t < 2; ++t) {
            int j = 0;
            while (le[t * 7 + j] >= 0) {
                const double v = X[i * d + fe[t * 7 + j]];
                j = (v != v ? ml[t * 7 + j] : v <= th[t * 7 + j]) ? le[t * 7 + j] : ri[t * 7 + j];
            }
            s += va[t * 7 + j];
        }
        bad += pr[i] != s;
    }
    EXPECT(!bad, "forest prediction %s: %d rows differ (exact)", parml_kernel_set_name(set), bad);
    free(a); free(b); free(o); free(X); free(y); free(B); free(g); free(h); free(rows);
    free(og); free(oh); free(pr);
}

int main(int argc, char **argv)
{
    static const ptrdiff_t edge[][3] = {
        {1, 1, 1}, {1, 1, 0}, {0, 3, 2}, {3, 0, 2}, {2, 3, 1}, {5, 7, 3}, {13, 17, 19},
        {12, 16, 256}, {13, 33, 257}, {25, 9, 300}, {64, 64, 64}, {97, 5, 130}, {3, 100, 50},
        {200, 11, 70}, {300, 160, 520},
    };
    for (int s = 0; s < PARML_N_SETS; ++s) {
        if (!parml_set_supported(s)) continue;
        EXPECT(parml_use_kernel_set(s) == PARML_OK, "use set %d", s);
        EXPECT(parml_kernel_set() == s, "set %d in use", s);
        for (size_t q = 0; argc == 1 && q < sizeof(edge) / sizeof(edge[0]); ++q)
            for (int t = 0; t < 4; ++t)
                check_gemm(s, edge[q][0], edge[q][1], edge[q][2], t & 1, t >> 1, q % 2 ? 3 : 2);
        for (int i = 1; i < argc; ++i) {
            long m, n, k;
            int ta, tb;
            if (sscanf(argv[i], "%ld,%ld,%ld,%d,%d", &m, &n, &k, &ta, &tb) != 5) {
                printf("bad shape argument %s (m,n,k,ta,tb)\n", argv[i]);
                return 2;
            }
            check_gemm(s, m, n, k, ta, tb, 2);
        }
        if (argc == 1) {
            check_other_kernels(s, 1);
            check_other_kernels(s, 3);
        }
    }
    if (argc == 1) check_bad_arguments();
    printf("%s %d checks, %d failed\n", failures ? "FAILED" : "ok", checks, failures);
    return failures ? 1 : 0;
}
