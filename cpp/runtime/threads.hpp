// The process-wide thread pool of the core, and how many threads it may use.
#pragma once

#include <cstddef>

namespace fastprop {

// The most threads the core will use: oversubscribing the CPUs this far still makes sense
// (tests, machines whose CPU count is misreported), beyond it every extra thread only costs.
// max(64, 4 × the number of CPUs).
std::size_t max_threads();

// Threads used for the matrix products and the other parallel passes of every network in the
// process, 1 <= k <= max_threads() (std::invalid_argument otherwise, "k must be an integer in
// [1, max_threads()], got k"). The default comes from
// the environment (settings.hpp): FASTPROP_NUM_THREADS, else OMP_NUM_THREADS, else the number
// of CPUs. Results are the same bits for every k.
void set_num_threads(long long k);
std::size_t get_num_threads();

namespace threads {

using Task = void (*)(void* context, std::size_t i);

// Runs task(context, i) for every i in [0, n_tasks) and returns when all are done. The caller
// takes tasks too; up to n_tasks - 1 pool workers (created lazily, kept for the process) take
// the rest. When another user thread holds the pool, everything runs on the caller instead, so
// concurrent callers never wait on each other. Which thread runs task i is unspecified: tasks
// must write disjoint outputs, not depend on the thread and not throw. A parallel_for called
// from inside a task runs serially on the thread running that task.
void parallel_for(std::size_t n_tasks, Task task, void* context);

// True on a thread while it runs pool tasks (always on the pool's workers).
bool in_task();

}  // namespace threads
}  // namespace fastprop
