/* parml's parallel-for: a small task pool in which the calling thread never waits for a helper
 * that has not started.
 *
 * Why not an OpenMP region: at the end of a region every thread of the team must arrive at the
 * barrier. On a shared 2-vCPU machine a helper often cannot arrive for a whole scheduler slice,
 * either because its vCPU is idle-halted (waking it took ~4 ms here) or because another spinning
 * pool (OpenBLAS after any numpy matmul) holds that vCPU: libgomp then stalled ~8 ms per region,
 * 400x a 20 us product (measured; docs/threading.md). Here:
 *
 *   caller                          helpers (sleeping, or spinning after their last job)
 *   publish job g in slot[g & 1] ->  wake; read slot, check g still current (seqlock)
 *   claim tasks: CAS on state        claim tasks: CAS on state = (g << 24 | next index)
 *   run them (worker id 0)           run them (worker id 1..n_threads-1)
 *   wait until done == ntasks        a helper arriving after the last claim just goes back
 *
 * The caller waits only for tasks that some thread has claimed, so a helper that never wakes costs
 * nothing: the caller runs every task itself, at one-thread speed. Worker ids are unique within a
 * job (per-worker scratch buffers), tasks are claimed in increasing order, and results never
 * depend on which thread ran a task. One job runs at a time (concurrent callers queue on a mutex).
 * After fork() the child starts with no helpers and creates new ones on demand.
 */
#ifndef PARML_POOL_H
#define PARML_POOL_H

#include <pthread.h>
#include <sched.h>
#ifdef __cplusplus
/* C++ (the C API, parml.h, included from C++): the same operations from <atomic> */
#include <atomic>
using std::atomic_int;
using std::atomic_llong;
using std::atomic_ullong;
using std::atomic_load_explicit;
using std::atomic_store_explicit;
using std::atomic_fetch_add_explicit;
using std::atomic_compare_exchange_weak_explicit;
using std::memory_order_relaxed;
using std::memory_order_acquire;
using std::memory_order_release;
using std::memory_order_acq_rel;
#else
#include <stdatomic.h>
#endif
#include <stdint.h>
#include <stddef.h>
#include <time.h>

#include "pool_api.h"

#define PARML_POOL_MAX_THREADS 1024
#define PARML_POOL_IDX_BITS 24
#define PARML_POOL_IDX_MASK ((UINT64_C(1) << PARML_POOL_IDX_BITS) - 1)
/* How long an idle helper spins before it sleeps: at least SPIN_MIN_NS; while the caller's jobs
 * come within SPIN_MAX_NS of each other, twice the last gap between them (parml_pool_spin_for),
 * for the helpers that took part in the last job (the others: SPIN_MIN_NS).
 * Waking a sleeping helper is slow on a VM that halts idle vCPUs: a 2-thread 256x256x128 float
 * product with 150-1000 us of Python between calls took 136-239 us after a 50 us spin, against
 * 179-205 on one thread, and 98-155 us with the helper spinning through the gap. Gaps over
 * SPIN_MAX_NS keep the short spin, so a process that calls parml now and then does not hold a
 * core it does not use. */
#define PARML_POOL_SPIN_MIN_NS 50000
#define PARML_POOL_SPIN_MAX_NS 2000000

#if defined(__x86_64__) || defined(__i386__)
#define PARML_CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
/* isb stalls the core a few tens of ns; `yield` is a no-op on most Arm cores, and the helpers
 * now spin up to 2 ms */
#define PARML_CPU_RELAX() __asm__ __volatile__("isb" ::: "memory")
#else
#define PARML_CPU_RELAX() ((void)0)
#endif

typedef struct {
    parml_task_fn fn;
    void *ctx;
    ptrdiff_t ntasks;
    int want;                 /* helpers this job may use: n_threads - 1 */
    atomic_int joined;        /* helper ids handed out */
    atomic_llong done;        /* tasks finished */
} parml_job;

static struct {
    pthread_mutex_t call_mu;  /* one job at a time */
    pthread_mutex_t mu;       /* sleeping helpers */
    pthread_cond_t cv;
    int n_helpers;
    int sleepers;             /* under mu */
    uint64_t gen;             /* under call_mu */
    atomic_ullong state;      /* (gen << IDX_BITS) | next task index */
    parml_job slot[2];
    int atfork_done;
    uint64_t last_end;        /* under call_mu: when the last job ended (parml_pool_ns) */
    atomic_ullong spin_ns;    /* how long helpers spin after the current job */
} parml_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static inline uint64_t parml_pool_gen(uint64_t s) { return s >> PARML_POOL_IDX_BITS; }

static inline uint64_t parml_pool_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The helpers' spin after a job that came gap_ns after the one before: the next gap is
 * predicted to be like the last, and a helper spinning through it is awake when the job comes. */
static inline uint64_t parml_pool_spin_for(uint64_t gap_ns)
{
    if (gap_ns > PARML_POOL_SPIN_MAX_NS) return PARML_POOL_SPIN_MIN_NS;
    const uint64_t spin = 2 * gap_ns;
    return spin < PARML_POOL_SPIN_MIN_NS ? PARML_POOL_SPIN_MIN_NS
         : spin > PARML_POOL_SPIN_MAX_NS ? PARML_POOL_SPIN_MAX_NS : spin;
}

/* The spin the helpers of the current (or last) job were given (tests read it). */
static inline uint64_t parml_pool_spin_ns(void)
{
    return atomic_load_explicit(&parml_pool.spin_ns, memory_order_relaxed);
}

/* Claim and run tasks of job g until none are left or the job is no longer current. */
static void parml_pool_work(uint64_t g, parml_job *job, parml_task_fn fn, void *ctx,
                            ptrdiff_t ntasks, int worker)
{
    unsigned long long s = atomic_load_explicit(&parml_pool.state, memory_order_acquire);
    for (;;) {
        if (parml_pool_gen(s) != (g & (UINT64_MAX >> PARML_POOL_IDX_BITS))) return;
        const ptrdiff_t idx = (ptrdiff_t)(s & PARML_POOL_IDX_MASK);
        if (idx >= ntasks) return;
        if (atomic_compare_exchange_weak_explicit(&parml_pool.state, &s, s + 1,
                                                  memory_order_acq_rel, memory_order_acquire)) {
            fn(ctx, idx, worker);
            atomic_fetch_add_explicit(&job->done, 1, memory_order_release);
            s = atomic_load_explicit(&parml_pool.state, memory_order_acquire);
        }
    }
}

static void *parml_pool_helper(void *arg)
{
    (void)arg;
    uint64_t seen = parml_pool_gen(atomic_load_explicit(&parml_pool.state, memory_order_acquire));
    int worked = 0;   /* this helper took part in the last job it saw */
    for (;;) {
        /* wait for a new job: spin a while (calls in a loop), then sleep */
        uint64_t s = atomic_load_explicit(&parml_pool.state, memory_order_acquire);
        if (parml_pool_gen(s) == seen) {
            const uint64_t t0 = parml_pool_ns();
            /* helpers beyond what the jobs use (left from a larger job) spin only briefly */
            const uint64_t limit = worked ? atomic_load_explicit(&parml_pool.spin_ns,
                                                                 memory_order_relaxed)
                                          : PARML_POOL_SPIN_MIN_NS;
            for (int i = 1; parml_pool_gen(s) == seen; ++i) {
                PARML_CPU_RELAX();
                if ((i & 255) == 0) {
                    const uint64_t spun = parml_pool_ns() - t0;
                    if (spun > limit) break;
                    /* past the short spin, offer the core to other runnable threads */
                    if ((i & 1023) == 0 && spun > PARML_POOL_SPIN_MIN_NS) sched_yield();
                }
                s = atomic_load_explicit(&parml_pool.state, memory_order_acquire);
            }
        }
        if (parml_pool_gen(s) == seen) {
            pthread_mutex_lock(&parml_pool.mu);
            parml_pool.sleepers++;
            while (parml_pool_gen(s = atomic_load_explicit(&parml_pool.state, memory_order_acquire)) == seen)
                pthread_cond_wait(&parml_pool.cv, &parml_pool.mu);
            parml_pool.sleepers--;
            pthread_mutex_unlock(&parml_pool.mu);
        }
        const uint64_t g = parml_pool_gen(s);
        seen = g;
        parml_job *job = &parml_pool.slot[g & 1];
        const parml_task_fn fn = job->fn;
        void *const ctx = job->ctx;
        const ptrdiff_t ntasks = job->ntasks;
        const int want = job->want;
        /* seqlock check: the slot is rewritten only two jobs later, after g is over */
        if (parml_pool_gen(atomic_load_explicit(&parml_pool.state, memory_order_acquire)) != g) {
            worked = 0;
            continue;
        }
        const int id = atomic_fetch_add_explicit(&job->joined, 1, memory_order_relaxed) + 1;
        worked = id <= want;
        if (!worked) continue;
        parml_pool_work(g, job, fn, ctx, ntasks, id);
    }
    return NULL;
}

static void parml_pool_atfork_child(void)
{
    /* the helpers did not survive the fork: start over, creating new ones on demand */
    pthread_mutex_init(&parml_pool.call_mu, NULL);
    pthread_mutex_init(&parml_pool.mu, NULL);
    pthread_cond_init(&parml_pool.cv, NULL);
    parml_pool.n_helpers = 0;
    parml_pool.sleepers = 0;
}

/* Run fn(ctx, task, worker) for task in [0, ntasks) on up to n_threads threads (the caller is
 * worker 0). Returns 0, or -1 if no task could be started (bad arguments). If helper threads
 * cannot be created, the caller runs everything itself. */
static int parml_parallel_for(ptrdiff_t ntasks, int n_threads, parml_task_fn fn, void *ctx)
{
    if (ntasks <= 0) return 0;
    if (fn == NULL || (uint64_t)ntasks > PARML_POOL_IDX_MASK / 2) return -1;
    if (n_threads > PARML_POOL_MAX_THREADS) n_threads = PARML_POOL_MAX_THREADS;
    if (n_threads > ntasks) n_threads = (int)ntasks;
    if (n_threads <= 1) {
        for (ptrdiff_t t = 0; t < ntasks; ++t) fn(ctx, t, 0);
        return 0;
    }
    pthread_mutex_lock(&parml_pool.call_mu);
    if (!parml_pool.atfork_done) {
        pthread_atfork(NULL, NULL, parml_pool_atfork_child);
        parml_pool.atfork_done = 1;
    }
    while (parml_pool.n_helpers < n_threads - 1) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        const int rc = pthread_create(&th, &attr, parml_pool_helper, NULL);
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        parml_pool.n_helpers++;
    }
    const uint64_t now = parml_pool_ns();
    atomic_store_explicit(&parml_pool.spin_ns,
                          parml_pool_spin_for(parml_pool.last_end ? now - parml_pool.last_end
                                                                  : UINT64_MAX),
                          memory_order_relaxed);
    const uint64_t g = ++parml_pool.gen & (UINT64_MAX >> PARML_POOL_IDX_BITS);
    parml_job *job = &parml_pool.slot[g & 1];
    job->fn = fn;
    job->ctx = ctx;
    job->ntasks = ntasks;
    job->want = n_threads - 1;
    atomic_store_explicit(&job->joined, 0, memory_order_relaxed);
    atomic_store_explicit(&job->done, 0, memory_order_relaxed);
    atomic_store_explicit(&parml_pool.state, g << PARML_POOL_IDX_BITS, memory_order_release);
    pthread_mutex_lock(&parml_pool.mu);
    if (parml_pool.sleepers > 0) pthread_cond_broadcast(&parml_pool.cv);
    pthread_mutex_unlock(&parml_pool.mu);

    parml_pool_work(g, job, fn, ctx, ntasks, 0);
    /* wait only for tasks that helpers claimed and are still running */
    for (int i = 1; atomic_load_explicit(&job->done, memory_order_acquire) < ntasks; ++i) {
        PARML_CPU_RELAX();
        if ((i & 1023) == 0) sched_yield();
    }
    parml_pool.last_end = parml_pool_ns();
    pthread_mutex_unlock(&parml_pool.call_mu);
    return 0;
}

#endif
