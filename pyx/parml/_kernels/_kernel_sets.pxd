# The kernel set in use (include/parml/kernel_sets.h ids): every kernel module cimports it and
# looks its kernels up by it at each entry.
cdef int active_set() noexcept nogil
