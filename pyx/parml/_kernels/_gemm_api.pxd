# The GEMM driver's C API (include/parml/gemm.h), shared by every kernel module that multiplies.
from libc.stddef cimport ptrdiff_t

from parml._kernels._pool cimport parml_parallel_for_fn

cdef extern from "parml/gemm.h" nogil:
    ctypedef struct parml_kernel_d:
        const char *name
        int mr, nr, kc, mc, nc
        int skinny_w
    ctypedef struct parml_kernel_s:
        const char *name
        int mr, nr, kc, mc, nc
        int skinny_w
    ctypedef struct parml_gemm_args_d:
        ptrdiff_t m, n, k
        const double *a
        ptrdiff_t rs_a, cs_a
        const double *b
        ptrdiff_t rs_b, cs_b
        double *c
        ptrdiff_t rs_c
    ctypedef struct parml_gemm_args_s:
        ptrdiff_t m, n, k
        const float *a
        ptrdiff_t rs_a, cs_a
        const float *b
        ptrdiff_t rs_b, cs_b
        float *c
        ptrdiff_t rs_c
    int PARML_N_KERNELS
    const parml_kernel_d parml_kernels_d[]     # indexed by kernel set (kernel_sets.h)
    const parml_kernel_s parml_kernels_s[]
    int parml_set_supported(int kernel_set)
    int parml_gemm_d(const parml_kernel_d *K, const parml_gemm_args_d *g, int n_threads,
                     int tasks, int direct, parml_parallel_for_fn parallel_for)
    int parml_gemm_s(const parml_kernel_s *K, const parml_gemm_args_s *g, int n_threads,
                     int tasks, int direct, parml_parallel_for_fn parallel_for)
    # a B packed once and shared by several products (gemm_impl.h: parml_prepack_b)
    size_t parml_prepacked_b_elems_d(const parml_kernel_d *K, ptrdiff_t k, ptrdiff_t n)
    size_t parml_prepacked_b_elems_s(const parml_kernel_s *K, ptrdiff_t k, ptrdiff_t n)
    void parml_prepack_b_d(const parml_kernel_d *K, ptrdiff_t k, ptrdiff_t n, const double *b,
                           ptrdiff_t rs, ptrdiff_t cs, double *dst)
    void parml_prepack_b_s(const parml_kernel_s *K, ptrdiff_t k, ptrdiff_t n, const float *b,
                           ptrdiff_t rs, ptrdiff_t cs, float *dst)
    void parml_prepack_b_rows_d(const parml_kernel_d *K, ptrdiff_t k, ptrdiff_t n, ptrdiff_t i0,
                                ptrdiff_t i1, const double *b, ptrdiff_t rs, double *dst)
    void parml_prepack_b_rows_s(const parml_kernel_s *K, ptrdiff_t k, ptrdiff_t n, ptrdiff_t i0,
                                ptrdiff_t i1, const float *b, ptrdiff_t rs, float *dst)
    void parml_prepack_bt_cols_d(const parml_kernel_d *K, ptrdiff_t k, ptrdiff_t n, ptrdiff_t j0,
                                 ptrdiff_t j1, const double *w, ptrdiff_t ldw, double *dst)
    void parml_prepack_bt_cols_s(const parml_kernel_s *K, ptrdiff_t k, ptrdiff_t n, ptrdiff_t j0,
                                 ptrdiff_t j1, const float *w, ptrdiff_t ldw, float *dst)
    int parml_gemm_packs_b_d(const parml_kernel_d *K, const parml_gemm_args_d *g, int direct)
    int parml_gemm_packs_b_s(const parml_kernel_s *K, const parml_gemm_args_s *g, int direct)
    int parml_gemm_prepacked_d(const parml_kernel_d *K, const parml_gemm_args_d *g, int direct,
                               const double *bpre)
    int parml_gemm_prepacked_s(const parml_kernel_s *K, const parml_gemm_args_s *g, int direct,
                               const float *bpre)
