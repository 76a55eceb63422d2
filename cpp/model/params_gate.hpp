// Snapshots of a network's parameters that are always a state between two updates, taken
// while another thread trains the network.
//
// Writers (a fit's updates, setting or drawing the parameters) enter the gate for as long as
// they write, and a trainer calls between_updates() after each update. A reader asks the gate
// to run its copy: it waits until every writer inside is parked between two updates (or none
// is inside), copies, and lets them go on. A writer asked to park does so at its next
// between_updates(), so a reader waits at most one update; a writer that is between updates
// for a while (in a callback, or checking for Ctrl-C) marks itself Parked for that time.
// The cost to the writer is one load of an atomic per update.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>

namespace fastprop {

class ParamsGate {
public:
    // A writer's stay inside the gate (waits while a reader copies).
    class Writing {
    public:
        explicit Writing(ParamsGate& gate) : gate_(gate) { gate_.enter(); }
        ~Writing() { gate_.leave(); }
        Writing(const Writing&) = delete;
        Writing& operator=(const Writing&) = delete;

    private:
        ParamsGate& gate_;
    };

    // A writer, inside, that is between two updates for a while (a callback, a poll).
    class Parked {
    public:
        explicit Parked(ParamsGate* gate) : gate_(gate) {
            if (gate_) gate_->park_begin();
        }
        ~Parked() {
            if (gate_) gate_->park_end();
        }
        Parked(const Parked&) = delete;
        Parked& operator=(const Parked&) = delete;

    private:
        ParamsGate* gate_;
    };

    // Called by a writer after each update: parks while a reader copies.
    void between_updates() {
        if (requested_.load(std::memory_order_acquire)) {
            park_begin();
            park_end();
        }
    }

    // Whether a reader waits for the writers to park: a writer that keeps the parameters
    // elsewhere between updates (train/lanes.hpp) writes them back before between_updates().
    bool reader_waiting() const { return requested_.load(std::memory_order_acquire); }

    // Runs copy() while no writer is inside or every one is parked.
    template <class Copy> void read(Copy&& copy) {
        std::unique_lock<std::mutex> lock(m_);
        cv_.wait(lock, [&] { return !requested_.load(std::memory_order_relaxed); });
        requested_.store(true, std::memory_order_release);
        cv_.wait(lock, [&] { return parked_ == writers_; });
        try {
            copy();
        } catch (...) {
            release(lock);
            throw;
        }
        release(lock);
    }

    // After fork(), in the child: a writer of the parent may have been inside, and its
    // thread is gone.
    void reset_after_fork() {
        new (&m_) std::mutex();
        new (&cv_) std::condition_variable();
        requested_.store(false);
        writers_ = parked_ = 0;
    }

private:
    void enter() {
        std::unique_lock<std::mutex> lock(m_);
        cv_.wait(lock, [&] { return !requested_.load(std::memory_order_relaxed); });
        ++writers_;
    }
    void leave() {
        std::lock_guard<std::mutex> lock(m_);
        --writers_;
        cv_.notify_all();
    }
    void park_begin() {
        std::lock_guard<std::mutex> lock(m_);
        ++parked_;
        cv_.notify_all();
    }
    void park_end() {
        std::unique_lock<std::mutex> lock(m_);
        cv_.wait(lock, [&] { return !requested_.load(std::memory_order_relaxed); });
        --parked_;
    }
    void release(std::unique_lock<std::mutex>&) {
        requested_.store(false, std::memory_order_release);
        cv_.notify_all();
    }

    std::mutex m_;
    std::condition_variable cv_;
    std::atomic<bool> requested_{false};
    int writers_ = 0, parked_ = 0;  // under m_
};

}  // namespace fastprop
