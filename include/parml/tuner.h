/* The thread tuner: for work that repeats (boosting iterations, MLP batches, L-BFGS objective
 * passes, small products of one size), whether n threads or one runs it faster, by timing the
 * work itself. It is the only one in parml: _kernels._tuner.Tuner wraps it for Python loops,
 * and the MLP epoch (mlp_impl.h) calls it per batch.
 *
 * Why measure: on an idle machine a second thread pays (1.4-1.9x); when another process keeps
 * one core busy, every short parallel region waits for the preempted helper, and n threads
 * become slower than one (0.82-1.16x a LogisticRegression fit's 1-thread time). So:
 *
 *   [warm-up on n] -> probe n (plan.probe units) -> probe 1 (plan.probe units) -> run the faster
 *   for `exploit` units -> probe again ...
 *
 * A probe that confirms the choice doubles the exploit period (from plan.exploit up to
 * plan.exploit_max), so a steady machine pays little for timing the losing side; a change of
 * choice resets it (to plan.exploit_one when one thread was chosen). With plan.watch, the
 * exploited units are timed too, in windows as long as a probe: a window slower than the losing
 * side's last probe (a busy core arrived) starts a probe at once. A run on one thread also ends
 * once it lasted plan.one_max_s, after plan.one_min units at least. With plan.skip_first, the
 * first unit of a probe, and of a run after one, is not timed: it pays for the switch (waking
 * the pool's sleeping helpers). With a hint (parml_tuner_hint_one: a unit's
 * predicted one-thread time from a measured rate, such as matmul's calibrated GEMM rate), the
 * first probe of one thread is skipped when n threads already ran under PARML_TUNER_HINT_MARGIN
 * of that prediction: one thread cannot win there, and a few products of one size would
 * otherwise spend three of their first six calls finding that out. The hint stands in for the
 * loser's time until the next probe, which times one thread for real (so a hint measured on a
 * busy core misleads for one exploit period at most). Only for work whose results do not
 * depend on the thread count, so switching never changes an answer. */
#ifndef PARML_TUNER_H
#define PARML_TUNER_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "clock.h"

typedef struct {
    int probe;              /* units run on each side per probe (>= 1) */
    int skip_first;         /* 1: the first unit of a probe is not timed */
    int64_t warmup;         /* units on n threads before the first probe, untimed */
    int64_t exploit;        /* units between probes after a change of choice */
    int64_t exploit_max;    /* ... doubling up to this while the choice holds */
    int watch;              /* 1: a window of exploited units slower than the loser re-probes */
    int fastest;            /* 1: a side's time is its fastest timed unit, not their sum */
    int64_t exploit_one;    /* units after a change of choice to one thread (<= exploit) */
    double wake_s;          /* units on n threads are timed only once n threads have run this
                             * long (summed unit time) since the last unit on one thread (after
                             * a run on one: at most PARML_TUNER_WAKE_SHARE of its time) */
    double one_max_s;       /* a run on one thread also ends once it lasted this long (summed
                             * unit time) ... */
    int64_t one_min;        /* ... and ran at least this many units; one_max_s = 0: no limit */
} parml_tuner_plan;

/* The plans, by the length of a unit:
 * - a boosting iteration (tens of ms) is long enough to time alone; its first run wakes the
 *   pool and first-touches the buffers, so it is a warm-up;
 * - an MLP batch (~0.1-1 ms) is timed over 4, the first after a switch left out; 96 batches
 *   between probes (1536 at most, ~0.3 s of the reference network);
 * - an L-BFGS pass or a small product (0.1-10 ms) is timed in threes, the cold first one left
 *   out, and each side counts its faster timed unit: one so short is easily hit by a spike (a
 *   helper preempted, OpenBLAS's threads still spinning after a numpy product), and a spike only
 *   adds time. Summed, single spikes had 512^3 float32 products run on one thread in some
 *   repeats (180-347 GFLOP/s against 380 before). A fit makes tens to hundreds of passes, so
 *   probes start after 8, and a busy core that arrives mid-fit is noticed at the next pair of
 *   passes (watch), not after a period of hundreds.
 * Watching costs a probe whenever one exploited unit is slower than the loser was: worth it for
 * calls, whose periods grow long compared with a fit; MLP batches are too short to time one by
 * one against noise (2-thread MLP fits were 6% slower with it), and boosting's periods stay
 * short (at most 128 iterations).
 * Calls and batches on n threads are timed (in probes and by the watch) only once n threads
 * have run for wake_s (2 ms, summed unit time) since the last unit on one thread (the first
 * probe, which no unit on one thread precedes, times from its second unit). The pool's
 * helpers slept through the one-thread units, and on a VM that halts idle vCPUs they come back
 * slowly: after 200 one-thread 128^3 products the first 2-thread call took 170-502 us and the
 * next ones ran at one-thread speed for up to ~1.5 ms (steady: 71-91 us against 143-173 on
 * one). Probes timed inside that stretch lost races n threads would win, at every probe: a
 * size class of products stayed on one thread, and 1 in 8 two-thread MLP fits ran most of
 * their batches on one thread (0.16-0.18 s per epoch against 0.11-0.14).
 * Beside a busy core that wait is paid in slow units at each probe of n threads that
 * interrupts a run on one: waiting the whole 2 ms made 128^3 float products 1.29x slower on
 * two threads than on one, against 1.14x without it. So after a run on one thread the wait is
 * capped at PARML_TUNER_WAKE_SHARE of that run's time: early, short periods probe as before,
 * and once one thread has held for ~64 ms the probes wait the whole wake_s, at most 1/32 of
 * the time. (After a run on n threads the wait costs nothing: those units would have run on n
 * threads anyway.)
 * An alarm of the watch that the probe refutes keeps the grown period: each false alarm used to
 * restart it at 8 calls, and the probes of one thread at 8, 16, 32 ... calls that followed took
 * up to ~8% of a run of 128^3 products on an idle VM that raised a few false alarms per 500
 * calls. A busy core is still noticed by the watch, at the next pair of slow calls.
 * A run on one thread has no watch: nothing it times says that the other core came free. With
 * periods doubling to thousands of units, 256x256x128 float products stayed on one thread for
 * 0.1-0.5 s after a busy process ended (1000-2700 calls at half speed). So calls and batches
 * also end a run on one thread once it lasted one_max_s (100 ms), but never before one_min
 * units (64 calls, 96 batches): for units so long that 100 ms holds only a few, the period stays
 * at least ~20 probes long, so the probes of n threads beside a busy core stay a few percent of
 * the run, as before. Each such probe first waits the whole wake_s (100 ms x WAKE_SHARE is
 * more). Beside a busy core, products asked for two threads took 0.94-1.09x (mean 1.018) the
 * one-thread time with the limit and 0.95-1.06x (1.016) without (bench/busy_core.py, 3 sizes in
 * 8 runs each); a 50 ms limit measured 2-3% worse. After the busy process ended they were
 * back on two threads within 50-100 ms.
 * Boosting iterations, tens of ms each, keep their periods of at most 128. */
#define PARML_TUNER_ITERATIONS ((parml_tuner_plan){1, 0, 1, 16, 128, 0, 0, 16, 0.0, 0.0, 0})
#define PARML_TUNER_BATCHES ((parml_tuner_plan){4, 1, 0, 96, 1536, 0, 0, 16, 2.0e-3, 0.1, 96})
#define PARML_TUNER_CALLS ((parml_tuner_plan){3, 1, 0, 8, 4096, 1, 1, 8, 2.0e-3, 0.1, 64})

/* Long products (over 8 ms on one thread) always run on n threads, and the tuner picks their
 * layout instead: its "n threads" side is one task per thread, its "one thread" side the split
 * into 3 tasks per thread. On an idle machine one task each ran 1-4% faster (2 threads, 1024^3:
 * the split's grid packs A three times and B twice); beside a busy core the split took 0.79-0.86x
 * the time of one thread and one task each 1.01-1.02x, because a thread that keeps losing its
 * core claims fewer tasks. Both sides keep the helpers busy, so no wait for them (wake_s 0).
 * A call is long enough to time alone; the watch sees a busy core arrive at the next pair of
 * slow calls. Nothing a split run times says that the busy core went away, so it ends after
 * 0.5 s and 16 calls at least, and one task each is timed again: beside a busy core such a probe
 * costs ~0.2 of a call per call it times, at most ~3% of the run. */
#define PARML_TUNER_LAYOUTS ((parml_tuner_plan){3, 1, 0, 8, 256, 1, 1, 8, 0.0, 0.5, 16})

/* n threads skip the first one-thread probe when they ran in under this share of the hint. The
 * hint comes from the best rate of one calibration shape (matmul: 192 x 256 x 192); the margin
 * leaves room for a size class whose own one-thread rate is somewhat higher, and past it n
 * threads beat the prediction by 1.25x or more. */
#define PARML_TUNER_HINT_MARGIN 0.8

/* The most of a run's time that the next probe's wait for the helpers (wake_s) may take. */
#define PARML_TUNER_WAKE_SHARE (1.0 / 32.0)

typedef struct {
    parml_tuner_plan plan;
    int n_max;              /* threads allowed; 1: always one */
    int adapt;              /* 0: always n_max */
    int phase;              /* 0 exploit, 1 probing n_max, 2 probing 1 */
    int64_t count;          /* units run in this phase */
    int64_t exploit;        /* units to run before the next probe */
    int best;               /* the count chosen by the last probe */
    double t_many, t_one;   /* timed seconds of the two probes (fastest: their fastest unit) */
    int watching;           /* 1 once a probe has settled (timed or hinted the losing side) */
    double t_other;         /* the losing side's timed seconds in the last probe */
    double w_sum;           /* timed seconds of the exploited units in the window (fastest: min) */
    int w_n;                /* ... and how many */
    int timed;              /* units timed in this probe's side */
    double warm;            /* time on n threads since the last unit on one thread */
    double wake;            /* this probe's (and the run after it) wait: wake_s, capped;
                             * 0 in the first probe */
    double run_s;           /* time of the run so far */
    double hint_one;        /* predicted seconds of a unit on one thread; 0: none */
    int64_t switches;       /* how often the choice changed (benchmarks report it) */
    int64_t units_many, units_one;
} parml_tuner;

/* What a side's time starts from, and how a timed unit adds to it. */
static inline double parml_tuner_zero(const parml_tuner *t)
{
    return t->plan.fastest ? HUGE_VAL : 0.0;
}

static inline double parml_tuner_add(const parml_tuner *t, double acc, double seconds)
{
    return t->plan.fastest ? (seconds < acc ? seconds : acc) : acc + seconds;
}

static inline void parml_tuner_init(parml_tuner *t, int n_max, int adapt, parml_tuner_plan plan)
{
    memset(t, 0, sizeof(*t));
    if (plan.probe < 1) plan.probe = 1;
    if (plan.skip_first && plan.probe < 2) plan.probe = 2;  /* one unit timed, at least */
    if (plan.exploit < 1) plan.exploit = 1;
    if (plan.exploit_max < plan.exploit) plan.exploit_max = plan.exploit;
    if (plan.exploit_one < 1 || plan.exploit_one > plan.exploit) plan.exploit_one = plan.exploit;
    t->plan = plan;
    t->n_max = n_max > 1 ? n_max : 1;
    t->adapt = adapt && t->n_max > 1;
    t->best = t->n_max;
    t->t_many = t->t_one = t->w_sum = parml_tuner_zero(t);
    if (plan.warmup > 0) {
        t->phase = 0;
        t->exploit = plan.warmup;
    } else {
        t->phase = 1;
        t->exploit = plan.exploit;
    }
}

/* A predicted one-thread time of a unit (same units as parml_tuner_record's), for the first
 * probe only; seconds <= 0 clears it. */
static inline void parml_tuner_hint_one(parml_tuner *t, double seconds)
{
    t->hint_one = seconds > 0.0 ? seconds : 0.0;
}

/* Threads for the next unit. */
static inline int parml_tuner_threads(parml_tuner *t)
{
    int nt;
    if (!t->adapt) nt = t->n_max;
    else if (t->phase == 1) nt = t->n_max;
    else if (t->phase == 2) nt = 1;
    else nt = t->best;
    if (nt > 1) t->units_many++;
    else t->units_one++;
    return nt;
}

/* A unit just run on the count parml_tuner_threads gave: `value` is what is compared (seconds,
 * or seconds per FLOP for work of varying size) and `elapsed` its wall seconds (what wake_s
 * counts). */
static inline void parml_tuner_record_as(parml_tuner *t, double value, double elapsed)
{
    if (!t->adapt) return;
    t->count++;
    if (!(elapsed >= 0.0)) elapsed = 0.0;
    const int timed_per_probe = t->plan.probe - t->plan.skip_first;
    const int one = t->phase == 2 || (t->phase == 0 && t->best == 1);
    /* a unit on n threads that started before the helpers were awake long enough is not timed */
    const int awake = one || t->warm >= t->wake;
    t->warm = one ? 0.0 : t->warm + elapsed;
    if (t->phase == 0) {
        int probe_now = t->count >= t->exploit;
        t->run_s += elapsed;
        if (one && t->plan.one_max_s > 0.0 && t->count >= t->plan.one_min
            && t->run_s >= t->plan.one_max_s)
            probe_now = 1;   /* the other core may be free again */
        if (t->plan.watch && t->watching && awake && (!t->plan.skip_first || t->count > 1)) {
            t->w_sum = parml_tuner_add(t, t->w_sum, value);
            if (++t->w_n == timed_per_probe) {
                if (t->w_sum > t->t_other) probe_now = 1;   /* the choice looks wrong now */
                t->w_sum = parml_tuner_zero(t);
                t->w_n = 0;
            }
        }
        if (probe_now) {
            t->phase = 1;
            t->count = 0;
            t->timed = 0;
            /* waiting costs slow calls only when they would have run on one thread */
            t->wake = t->plan.wake_s;
            if (t->best == 1 && t->wake > PARML_TUNER_WAKE_SHARE * t->run_s)
                t->wake = PARML_TUNER_WAKE_SHARE * t->run_s;
            t->t_many = parml_tuner_zero(t);
            t->w_sum = parml_tuner_zero(t);
            t->w_n = 0;
        }
        return;
    }
    /* the first unit of a side pays for the switch */
    if ((!t->plan.skip_first || t->count > 1) && awake) {
        t->timed++;
        if (t->phase == 1) t->t_many = parml_tuner_add(t, t->t_many, value);
        else t->t_one = parml_tuner_add(t, t->t_one, value);
    }
    if (t->count < t->plan.probe || t->timed < timed_per_probe) return;
    /* the hint as a probe's time: one unit's, or the sum of as many as a probe times */
    const double hint = t->hint_one * (t->plan.fastest ? 1 : timed_per_probe);
    if (t->phase == 1 && !(hint > 0.0 && !t->watching
                           && t->t_many < PARML_TUNER_HINT_MARGIN * hint)) {
        t->phase = 2;
        t->timed = 0;
        t->t_one = parml_tuner_zero(t);
    } else {
        if (t->phase == 1) t->t_one = hint;   /* the first probe, settled by the hint */
        const int best = t->t_many < t->t_one ? t->n_max : 1;
        const int64_t first = best == 1 ? t->plan.exploit_one : t->plan.exploit;
        if (best != t->best) {
            t->switches++;
            t->exploit = first;
        } else if (t->exploit < first) {
            t->exploit = first;   /* after the warm-up */
        } else {
            t->exploit = 2 * t->exploit < t->plan.exploit_max ? 2 * t->exploit
                                                              : t->plan.exploit_max;
        }
        t->best = best;
        t->t_other = best == t->n_max ? t->t_one : t->t_many;
        t->watching = 1;
        t->phase = 0;
        t->run_s = 0.0;
    }
    t->count = 0;
}

/* Seconds the unit just run took, on the count parml_tuner_threads gave. */
static inline void parml_tuner_record(parml_tuner *t, double seconds)
{
    parml_tuner_record_as(t, seconds, seconds);
}

#endif
