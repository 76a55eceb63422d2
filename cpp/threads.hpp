#pragma once
#include <cstddef>

namespace fastprop {
namespace threads {

using Task = void (*)(void* context, std::size_t i);

// Runs task(context, i) for every i in [0, n_tasks) and returns when all are done. The caller
// takes tasks too; up to n_tasks - 1 pool workers (created lazily, kept for the process) take
// the rest. When another user thread holds the pool, everything runs on the caller instead, so
// concurrent callers never wait on each other. Which thread runs task i is unspecified: tasks
// must write disjoint outputs, not depend on the thread and not throw. A parallel_for called
// from inside a task runs serially on the thread running that task.
void parallel_for(std::size_t n_tasks, Task task, void* context);

}  // namespace threads
}  // namespace fastprop
