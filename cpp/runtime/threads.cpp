#include "runtime/threads.hpp"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "runtime/settings.hpp"

namespace fastprop {
namespace {

std::size_t cpus() {
    const unsigned k = std::thread::hardware_concurrency();
    return k > 0 ? k : 1;
}

std::atomic<std::size_t> g_num_threads{0};  // 0: not yet read from the environment

// True on a thread while it runs pool tasks (on workers, always): a parallel_for from inside
// a task (a gemm inside one half of a training step) then runs serially on that thread.
thread_local bool t_in_task = false;

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// A worker that finished a task spins this long before sleeping: a training step issues one
// gemm per layer a few microseconds apart, and a condition-variable wake-up costs tens of µs.
constexpr std::chrono::microseconds spin_before_sleep{100};

bool spin_until(const std::atomic<bool>& stop, const std::atomic<std::uint64_t>& value,
                std::uint64_t not_equal_to) {
    const auto deadline = std::chrono::steady_clock::now() + spin_before_sleep;
    for (;;) {
        for (int i = 0; i < 64; ++i) {
            if (value.load(std::memory_order_acquire) != not_equal_to) return true;
            if (stop.load(std::memory_order_relaxed)) return true;
            cpu_relax();
        }
        if (std::chrono::steady_clock::now() > deadline) return false;
    }
}

class Pool {
public:
    Pool() = default;
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;

    ~Pool() {
        std::lock_guard<std::mutex> owner(busy_);  // let a running job finish
        {
            std::lock_guard<std::mutex> lock(m_);
            stop_ = true;
        }
        stopping_.store(true, std::memory_order_relaxed);
        wake_.notify_all();
        for (std::thread& worker : workers_) worker.join();
    }

    // One job at a time: a second user thread calling while a job runs gets false and does
    // its work serially instead of waiting (or deadlocking when it is a worker itself).
    bool try_enter() { return busy_.try_lock(); }
    void leave() { busy_.unlock(); }

    // Requires try_enter() == true.
    void run(std::size_t n_tasks, threads::Task task, void* context) {
        while (workers_.size() + 1 < n_tasks) {
            try {
                workers_.emplace_back([this, k = workers_.size()] { work(k); });
            } catch (...) {  // no more threads: the caller and existing workers take the rest
                break;
            }
        }
        done_.store(0, std::memory_order_relaxed);
        {
            std::lock_guard<std::mutex> lock(m_);
            task_ = task;
            context_ = context;
            next_ = 0;
            n_tasks_ = n_tasks;
            generation_.fetch_add(1, std::memory_order_release);
        }
        wake_.notify_all();
        // The caller takes tasks like any worker, so a worker that wakes late costs nothing.
        t_in_task = true;
        for (;;) {
            std::size_t i = 0;
            {
                std::lock_guard<std::mutex> lock(m_);
                if (next_ == n_tasks_) break;
                i = next_++;
            }
            task(context, i);
            done_.fetch_add(1, std::memory_order_acq_rel);
        }
        t_in_task = false;
        const auto deadline = std::chrono::steady_clock::now() + spin_before_sleep;
        while (done_.load(std::memory_order_acquire) != n_tasks &&
               std::chrono::steady_clock::now() < deadline)
            cpu_relax();
        std::unique_lock<std::mutex> lock(m_);
        done_cv_.wait(lock, [&] { return done_.load(std::memory_order_acquire) == n_tasks; });
        task_ = nullptr;  // every claimed task has finished: nobody reads the job any more
    }

private:
    // Worker k (0-based) serves jobs of more than k + 1 tasks: after set_num_threads lowers the
    // count, the workers past it neither spin nor take tasks, so a pool once grown large costs
    // the jobs that follow nothing.
    void work(std::size_t k) {
        t_in_task = true;
        std::unique_lock<std::mutex> lock(m_);
        for (;;) {
            if (stop_) return;
            const bool needed = k + 1 < n_tasks_;
            if (needed && task_ != nullptr && next_ < n_tasks_) {
                const std::size_t i = next_++;
                const threads::Task task = task_;
                void* const context = context_;
                const std::size_t n_tasks = n_tasks_;
                lock.unlock();
                task(context, i);
                if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_tasks) {
                    // Taking m_ orders this against the caller's predicate check: no lost wake-up.
                    lock.lock();
                    lock.unlock();
                    done_cv_.notify_all();
                }
                lock.lock();
                continue;
            }
            const std::uint64_t seen = generation_.load(std::memory_order_relaxed);
            lock.unlock();
            if (needed) spin_until(stopping_, generation_, seen);
            lock.lock();
            wake_.wait(lock, [&] {
                return stop_ || (generation_.load(std::memory_order_relaxed) != seen &&
                                 k + 1 < n_tasks_);
            });
        }
    }

    std::mutex busy_;  // held by the user thread that owns the current job
    std::vector<std::thread> workers_;  // grown under busy_

    std::mutex m_;
    std::condition_variable wake_, done_cv_;
    threads::Task task_ = nullptr;  // the job, under m_
    void* context_ = nullptr;
    std::size_t next_ = 0, n_tasks_ = 0;
    bool stop_ = false;
    std::atomic<std::size_t> done_{0};
    std::atomic<std::uint64_t> generation_{0};  // bumped per job, under m_; read when spinning
    std::atomic<bool> stopping_{false};
};

std::atomic<Pool*> g_pool{nullptr};
std::atomic<bool> g_exiting{false};
std::atomic<bool> g_atfork_registered{false};

// After fork() only the forking thread exists in the child: the parent's workers are gone and
// its mutexes may be held, so the child forgets (leaks) that pool and makes a fresh one.
void forget_pool_in_child() { g_pool.store(nullptr, std::memory_order_relaxed); }

// Joins the workers during static destruction, so exit neither hangs nor kills a thread
// that is touching freed state; later callers (other static destructors) run serially.
struct PoolOwner {
    PoolOwner() = default;
    PoolOwner(const PoolOwner&) = delete;
    PoolOwner& operator=(const PoolOwner&) = delete;
    ~PoolOwner() {
        g_exiting.store(true);
        delete g_pool.exchange(nullptr);
    }
};
PoolOwner g_pool_owner;

Pool* pool() {
    if (g_exiting.load(std::memory_order_relaxed)) return nullptr;
    Pool* current = g_pool.load(std::memory_order_acquire);
    if (current != nullptr) return current;
    if (!g_atfork_registered.exchange(true)) pthread_atfork(nullptr, nullptr, &forget_pool_in_child);
    Pool* fresh = new Pool;
    if (g_pool.compare_exchange_strong(current, fresh)) return fresh;
    delete fresh;  // another thread won the race; use its pool
    return current;
}

}  // namespace

std::size_t max_threads() {
    static const std::size_t most = std::max<std::size_t>(64, 4 * cpus());
    return most;
}

void set_num_threads(long long k) {
    if (k < 1 || static_cast<unsigned long long>(k) > max_threads())
        throw std::invalid_argument("k must be an integer in [1, " +
                                    std::to_string(max_threads()) + "], got " +
                                    std::to_string(k));
    g_num_threads.store(static_cast<std::size_t>(k), std::memory_order_relaxed);
}

std::size_t get_num_threads() {
    std::size_t k = g_num_threads.load(std::memory_order_relaxed);
    if (k == 0) {
        k = threads_from_environment().value_or(cpus());
        std::size_t unset = 0;
        if (!g_num_threads.compare_exchange_strong(unset, k)) k = unset;
    }
    return k;
}

namespace threads {

bool in_task() { return t_in_task; }

void parallel_for(std::size_t n_tasks, Task task, void* context) {
    Pool* p = n_tasks > 1 && !t_in_task ? pool() : nullptr;
    if (p != nullptr && p->try_enter()) {
        p->run(n_tasks, task, context);
        p->leave();
        return;
    }
    for (std::size_t i = 0; i < n_tasks; ++i) task(context, i);
}

}  // namespace threads
}  // namespace fastprop
