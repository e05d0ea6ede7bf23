"""Shuffled per-sample SGD on 2 threads, pipelined (the SGD epochs are _sgd.pyx): each visited row
is a random read (~100 ns here even when prefetched, against ~25-45 ns for its update), and the
updates are a serial chain. So one thread (the stepper, always the calling thread) runs the steps,
and the other (the gatherer) copies rows that the stepper will reach soon, in blocks of
consecutive visiting positions, into a ring of buffers that the stepper then reads sequentially
from cache.

Neither thread ever waits for the other's progress. A block is claimed by exactly one of them
(an atomic state per block): the gatherer claims blocks a little ahead of the stepper; the
stepper, reaching a block, claims it if it is still free and steps it straight from X (the
1-thread way), steps it from the ring if it is gathered, and steps it straight from X too if
the gatherer is still copying it. So a gatherer that is preempted, slow or never scheduled
costs nothing but its own block, and the epoch is never slower than the stepper alone; the
gatherer only waits (spinning, yielding) when it is a whole ring ahead. The steps are the same,
on the same values in the same order, whichever way a block is read: bit-identical to the
1-thread epoch, loss sum included.
"""

from libc.stddef cimport ptrdiff_t
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memset, memcpy

from parml._kernels._linear_api cimport (
    LinCtx, PREFETCH_ROWS, parallel_for, parml_prefetch_init, parml_prefetch_one,
    parml_prefetch_row_nta)

cdef extern from "parml/atomics.h" nogil:
    unsigned char parml_load_acq_u8(const unsigned char *p)
    void parml_store_rel_u8(unsigned char *p, unsigned char v)
    int parml_cas_u8(unsigned char *p, unsigned char expect, unsigned char v)
    Py_ssize_t parml_load_acq_z(const Py_ssize_t *p)
    void parml_store_rel_z(Py_ssize_t *p, Py_ssize_t v)
    void parml_add_z(Py_ssize_t *p, Py_ssize_t v)
    void parml_spin_step(long *spins)


cdef enum:
    PIPE_BLOCK_BYTES = 32768   # rows per block: this many bytes of rows, within the bounds:
    PIPE_MIN_BLOCK_ROWS = 4    # wide rows: a block's claim (atomic) is shared by 4 rows or more
    PIPE_MAX_BLOCK_ROWS = 32   # narrow rows: the gatherer's lead of PIPE_AHEAD blocks stays short
    PIPE_RING_BYTES = 524288   # ring of blocks (the stepper reads it from L2/L3)
    PIPE_AHEAD = 4             # the gatherer starts at least this many blocks past the stepper
    # ring slots at least: the gatherer starts PIPE_AHEAD blocks past the stepper and stops a ring
    # ahead of it, so this leaves it two blocks to gather at any time
    PIPE_MIN_SLOTS = PIPE_AHEAD + 2
    BLK_FREE = 0
    BLK_GATHERING = 1
    BLK_GATHERED = 2
    BLK_TAKEN = 3              # by the stepper, straight from X


ctypedef struct PipeCtx:
    LinCtx *c                  # the context the steps read (pointed at X or at a ring slot)
    pipe_step_fn step          # the caller's step over rows, on its state `stepper`
    void *stepper
    int mode                   # PIPE_RACE, or a test mode (_sgd_pipeline.pxd)
    const char *X              # IN   the data
    Py_ssize_t ldx, rowbytes
    const double *y
    const double *sw
    const Py_ssize_t *order    # IN   visiting order
    Py_ssize_t n, B, nblk, R   # rows, rows per block, blocks, ring slots
    char *ring                 # R slots of B rows, rowbytes apart
    double *yring
    double *swring
    unsigned char *state       # per block: BLK_*
    Py_ssize_t consumed        # blocks the stepper is done with (atomic; slots below are free)
    int stepped                # the stepper role has run (read by the caller only)
    double loss
    Py_ssize_t nring, nx       # blocks stepped from the ring / from X


cdef Py_ssize_t _pipe_blocks[2]  # blocks stepped from the ring / from X, since import

parml_prefetch_init()


cdef void _pipe_gather(PipeCtx *p, Py_ssize_t k) noexcept nogil:
    """Block k's rows (features, target, weight) into its ring slot."""
    cdef Py_ssize_t lo = k * p.B, hi = min(lo + p.B, p.n), i, r, q, slot = (k % p.R) * p.B
    cdef char *dst = p.ring + slot * p.rowbytes
    for i in range(lo, hi):
        r = p.order[i]
        # past the block too: the gatherer usually goes on with the next block, whose first
        # rows would otherwise be misses without any lead
        if i + PREFETCH_ROWS < p.n:
            q = p.order[i + PREFETCH_ROWS]
            parml_prefetch_row_nta(p.X + q * p.ldx, p.rowbytes)
            parml_prefetch_one(p.y + q)
            if p.sw != NULL:
                parml_prefetch_one(p.sw + q)
        memcpy(dst + (i - lo) * p.rowbytes, p.X + r * p.ldx, p.rowbytes)
        p.yring[slot + i - lo] = p.y[r]
        if p.sw != NULL:
            p.swring[slot + i - lo] = p.sw[r]


cdef void _pipe_stepper(PipeCtx *p) noexcept nogil:
    cdef LinCtx *c = p.c
    cdef Py_ssize_t j, lo, hi, slot, i, r
    cdef unsigned char st
    for j in range(p.nblk):
        lo, hi = j * p.B, min(j * p.B + p.B, p.n)
        st = parml_load_acq_u8(&p.state[j])
        if st == BLK_FREE:
            if parml_cas_u8(&p.state[j], BLK_FREE, BLK_TAKEN):
                st = BLK_TAKEN                         # ours: straight from X
                if p.mode == PIPE_ALL_FROM_RING:       # (tests: the stepper gathers, then reads)
                    _pipe_gather(p, j)
                    st = BLK_GATHERED
            else:
                st = parml_load_acq_u8(&p.state[j])    # the gatherer claimed it just now
        if st == BLK_GATHERED:
            # the next block, if no one is copying it, is read from X: its first rows now
            if j + 1 < p.nblk and parml_load_acq_u8(&p.state[j + 1]) == BLK_FREE:
                for i in range(hi, min(hi + PREFETCH_ROWS, p.n)):
                    r = p.order[i]
                    parml_prefetch_row_nta(p.X + r * p.ldx, p.rowbytes)
                    parml_prefetch_one(p.y + r)
                    if p.sw != NULL:
                        parml_prefetch_one(p.sw + r)
            slot = (j % p.R) * p.B
            c.X, c.ldx, c.y = p.ring + slot * p.rowbytes, p.rowbytes, p.yring + slot
            c.sw = p.swring + slot if p.sw != NULL else NULL
            c.idx = NULL
            p.loss = p.step(p.stepper, 0, hi - lo, 0, p.loss)
            p.nring += 1
        else:     # taken by the stepper, or still being copied: straight from X
            c.X, c.ldx, c.y, c.sw, c.idx = p.X, p.ldx, p.y, p.sw, p.order
            # prefetch past this block only into a next block that is still free (the gatherer
            # normally does not claim it now: it works PIPE_AHEAD blocks ahead): rows the
            # gatherer copies would be read from memory twice, and two threads may get no more
            # bandwidth than one
            p.loss = p.step(p.stepper, lo, hi,
                            min(hi + p.B, p.n) if j + 1 < p.nblk and
                            parml_load_acq_u8(&p.state[j + 1]) == BLK_FREE else hi, p.loss)
            p.nx += 1
        parml_store_rel_z(&p.consumed, j + 1)


cdef void _pipe_gatherer(PipeCtx *p) noexcept nogil:
    cdef Py_ssize_t k = 0, cons
    cdef long spins = 0
    if p.mode in (PIPE_ALL_FROM_X, PIPE_ALL_FROM_RING, PIPE_STEP_AFTER_JOB):   # (tests: idle)
        return
    while True:
        cons = parml_load_acq_z(&p.consumed)
        k = max(k, cons + PIPE_AHEAD)
        if k >= p.nblk:
            return
        if k >= cons + p.R:   # a whole ring ahead: slot k % R still holds block k - R
            if p.mode == PIPE_FILL_THEN_STEP:   # (tests: the steps come after the job: stop)
                return
            parml_spin_step(&spins)
            continue
        if parml_load_acq_u8(&p.state[k]) == BLK_FREE \
                and parml_cas_u8(&p.state[k], BLK_FREE, BLK_GATHERING):
            _pipe_gather(p, k)
            parml_store_rel_u8(&p.state[k], BLK_GATHERED)
        k += 1


cdef void _t_pipe(void *vp, ptrdiff_t t, int worker) noexcept nogil:
    """The calling thread steps (once); any other thread, or the caller's second task once the
    steps are done, gathers (returning at once when no block is left). A helper can claim both
    tasks before the caller claims either: its gatherer returns without the steps' progress when
    it reaches the last block (a ring that holds every block from PIPE_AHEAD on, or fewer blocks
    than PIPE_AHEAD), or at once in the test modes PIPE_ALL_FROM_X to PIPE_STEP_AFTER_JOB; then
    the caller steps after the job (sgd_pipelined). Otherwise the caller, which claims tasks
    right after publishing the job, gets the remaining task and steps."""
    cdef PipeCtx *p = <PipeCtx *>vp
    if worker == 0 and not p.stepped and p.mode != PIPE_STEP_AFTER_JOB \
            and p.mode != PIPE_FILL_THEN_STEP:
        p.stepped = 1
        _pipe_stepper(p)
    else:
        _pipe_gatherer(p)


def block_counts():
    """(blocks stepped from the ring, blocks stepped from X) by the pipeline since import."""
    return int(parml_load_acq_z(&_pipe_blocks[0])), int(parml_load_acq_z(&_pipe_blocks[1]))


cdef inline Py_ssize_t _pipe_block_rows(Py_ssize_t rowbytes) noexcept nogil:
    return min(max(<Py_ssize_t>PIPE_BLOCK_BYTES // max(rowbytes, 1), PIPE_MIN_BLOCK_ROWS),
               PIPE_MAX_BLOCK_ROWS)


cdef int sgd_pipelined(LinCtx *c, const Py_ssize_t *order, Py_ssize_t n, pipe_step_fn step,
                       void *stepper, int test_mode, double *sumloss) noexcept nogil:
    """The shuffled epoch (order) pipelined on 2 threads; 0, or -1 (thread pool). Falls back
    to the 1-thread epoch when the buffers cannot be allocated."""
    cdef PipeCtx p
    cdef int rc = 0
    memset(&p, 0, sizeof(PipeCtx))
    p.c, p.step, p.stepper, p.mode = c, step, stepper, test_mode
    p.X, p.ldx, p.y, p.sw, p.order, p.n = c.X, c.ldx, c.y, c.sw, order, n
    p.rowbytes = c.d * c.xsize
    p.B = _pipe_block_rows(p.rowbytes)
    p.nblk = (n + p.B - 1) // p.B
    p.R = max(<Py_ssize_t>PIPE_RING_BYTES // (p.B * max(p.rowbytes, 1)), PIPE_MIN_SLOTS)
    p.ring = <char *>malloc(max(p.R * p.B * p.rowbytes, 1))
    p.yring = <double *>malloc(p.R * p.B * sizeof(double))
    p.swring = <double *>malloc(p.R * p.B * sizeof(double)) if p.sw != NULL else NULL
    p.state = <unsigned char *>calloc(p.nblk, 1)
    if p.ring == NULL or p.yring == NULL or (p.sw != NULL and p.swring == NULL) \
            or p.state == NULL:
        sumloss[0] = step(stepper, 0, n, n, sumloss[0])
    else:
        rc = parallel_for(2, 2, _t_pipe, &p)
        if not p.stepped:   # (a helper took both tasks: see _t_pipe)
            _pipe_stepper(&p)
        sumloss[0] += p.loss
        parml_add_z(&_pipe_blocks[0], p.nring)
        parml_add_z(&_pipe_blocks[1], p.nx)
    c.X, c.ldx, c.y, c.sw, c.idx, c.row0 = p.X, p.ldx, p.y, p.sw, order, 0
    free(p.ring)
    free(p.yring)
    free(p.swring)
    free(p.state)
    return rc

