/* Point-wise losses of the linear models: loss(z, y) and its derivative in z, for one output.
 * Classification losses take y in {-1, +1} (margin form, p = y z); regression losses take any
 * real y. The multinomial (softmax) loss couples outputs and lives with its kernel. */
#ifndef PARML_LOSSES_H
#define PARML_LOSSES_H

#include <math.h>

enum {
    PARML_L_SQUARED = 0,      /* 0.5 (z - y)^2                                  */
    PARML_L_LOG = 1,          /* log(1 + exp(-y z))                             */
    PARML_L_HINGE = 2,        /* max(0, 1 - y z)                                */
    PARML_L_SQHINGE = 3,      /* max(0, 1 - y z)^2                              */
    PARML_L_MODHUBER = 4,     /* smoothed hinge, linear below y z = -1          */
    PARML_L_PERCEPTRON = 5,   /* max(0, -y z)                                   */
    PARML_L_HUBER = 6,        /* quadratic inside |z - y| <= eps, linear outside */
    PARML_L_EPSINS = 7,       /* max(0, |z - y| - eps)                          */
    PARML_L_SQEPSINS = 8,     /* max(0, |z - y| - eps)^2                        */
    PARML_L_MULTINOMIAL = 9,  /* softmax cross-entropy over K outputs           */
    PARML_N_LOSSES = 10
};

/* d loss / d z clipped to [-m, m] (scikit-learn's SGD clips at 1e12) */
static inline double parml_clip_dl(double dl, double m)
{
    return dl > m ? m : (dl < -m ? -m : dl);
}

/* Returns loss(z, y) (0 for the log loss when !need_loss: its log1p is the costliest part of an
 * SGD step and only the stopping rule reads it); stores d loss / d z in *dl. */
static inline double parml_loss(int loss, double z, double y, double eps, double *dl, int need_loss)
{
    double p, r, e;
    switch (loss) {
    case PARML_L_SQUARED:
        r = z - y;
        *dl = r;
        return 0.5 * r * r;
    case PARML_L_LOG:
        p = y * z;
        /* one exp, never overflowing: e = exp(-|p|) */
        e = exp(-fabs(p));
        if (p > 0) {
            *dl = -y * e / (1.0 + e);
            return need_loss ? log1p(e) : 0.0;
        }
        *dl = -y / (1.0 + e);
        return need_loss ? -p + log1p(e) : 0.0;
    case PARML_L_HINGE:
        p = y * z;
        if (p < 1.0) {
            *dl = -y;
            return 1.0 - p;
        }
        *dl = 0.0;
        return 0.0;
    case PARML_L_SQHINGE:
        p = 1.0 - y * z;
        if (p > 0.0) {
            *dl = -2.0 * y * p;
            return p * p;
        }
        *dl = 0.0;
        return 0.0;
    case PARML_L_MODHUBER:
        p = y * z;
        if (p >= 1.0) {
            *dl = 0.0;
            return 0.0;
        }
        if (p >= -1.0) {
            *dl = -2.0 * y * (1.0 - p);
            return (1.0 - p) * (1.0 - p);
        }
        *dl = -4.0 * y;
        return -4.0 * p;
    case PARML_L_PERCEPTRON:
        p = y * z;
        if (p <= 0.0) {
            *dl = -y;
            return -p;
        }
        *dl = 0.0;
        return 0.0;
    case PARML_L_HUBER:
        r = z - y;
        if (fabs(r) <= eps) {
            *dl = r;
            return 0.5 * r * r;
        }
        *dl = r > 0 ? eps : -eps;
        return eps * fabs(r) - 0.5 * eps * eps;
    case PARML_L_EPSINS:
        r = z - y;
        if (r > eps) {
            *dl = 1.0;
            return r - eps;
        }
        if (r < -eps) {
            *dl = -1.0;
            return -r - eps;
        }
        *dl = 0.0;
        return 0.0;
    case PARML_L_SQEPSINS:
        r = z - y;
        if (r > eps) {
            *dl = 2.0 * (r - eps);
            return (r - eps) * (r - eps);
        }
        if (r < -eps) {
            *dl = 2.0 * (r + eps);
            return (r + eps) * (r + eps);
        }
        *dl = 0.0;
        return 0.0;
    default:
        *dl = 0.0;
        return 0.0;
    }
}

/* Softmax cross-entropy for one sample: z[0..K) holds the scores on entry and d loss / d z on exit
 * (p_k - [k == cls]). Returns the loss, log-sum-exp(z) - z[cls]. */
static inline double parml_softmax_loss(double *z, ptrdiff_t K, ptrdiff_t cls)
{
    double zmax = z[0], s = 0.0, zc = z[cls];
    for (ptrdiff_t k = 1; k < K; ++k)
        if (z[k] > zmax) zmax = z[k];
    for (ptrdiff_t k = 0; k < K; ++k) {
        z[k] = exp(z[k] - zmax);
        s += z[k];
    }
    const double inv = 1.0 / s;
    for (ptrdiff_t k = 0; k < K; ++k) z[k] *= inv;
    z[cls] -= 1.0;
    return log(s) + zmax - zc;
}

#endif
