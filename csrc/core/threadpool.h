// The process-wide CPU thread pool. Kernels split work with parallel_for; the calling thread takes
// part, so a pool of N threads runs N-1 workers. One caller at a time (callers are serialized).
#pragma once
#include <cstdint>
#include <functional>

namespace mk {

// fn(begin, end) is called on disjoint sub-ranges covering [0, n). Chunks are at least `grain`.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// Runs fn(t, nthreads) once on each of the pool's threads (t in [0, nthreads)).
void parallel_run(const std::function<void(int, int)>& fn);

// fn(i) once for each i in [0, count), items claimed one at a time by whichever thread is free: for
// work of uneven cost, or a pool whose workers wake late (they simply take fewer items).
void parallel_items(int64_t count, const std::function<void(int64_t)>& fn);

int num_threads();
// Resizes the pool (n >= 1). Defaults to MAMBAKIT_THREADS or the hardware concurrency.
void set_num_threads(int n);

}  // namespace mk
