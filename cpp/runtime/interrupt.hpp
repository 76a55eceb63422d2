// Stopping long work from outside: a poll asked between chunks of work and between updates.
#pragma once

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>
#include <utility>

namespace fastprop {

// Asked between chunks and between updates; returning true stops the work.
using Poll = std::function<bool()>;

// Thrown by the passes when the poll asks them to stop; the trainer turns it into
// Stop::interrupted, with the parameters at the last completed update.
struct Interrupted : std::exception {
    const char* what() const noexcept override { return "interrupted"; }
};

inline void check_poll(const Poll& poll) {
    if (poll && poll()) throw Interrupted();
}

// A poll that asks `check` (for example: did a signal arrive?) at most every 20 ms. The clock
// itself is read only every `stride` calls, the stride sized from the calls' measured length
// so that a read comes about every 0.25 ms: W1's steps take well under a microsecond, and a
// clock read per step cost 5% of them. The stride at most doubles per read, so that a first
// interval measured too short (a call polled right after the poll was made) cannot stop the
// reads for thousands of calls.
class ThrottledPoll {
public:
    explicit ThrottledPoll(std::function<bool()> check) : check_(std::move(check)) {}

    bool operator()() {
        if (++calls_ < stride_) return false;
        const auto now = clock::now();
        const auto per_call = (now - read_) / calls_;
        read_ = now;
        calls_ = 0;
        const long most = std::min<long>(4096, 2 * stride_);
        stride_ = per_call.count() > 0 ? std::clamp<long>(long(read_every / per_call), 1, most)
                                       : most;
        if (now - last_ < check_every) return false;
        last_ = now;
        return check_();
    }

private:
    using clock = std::chrono::steady_clock;
    static constexpr std::chrono::microseconds read_every{250};
    static constexpr std::chrono::milliseconds check_every{20};
    std::function<bool()> check_;
    clock::time_point last_ = clock::now(), read_ = last_;
    long calls_ = 0, stride_ = 1;
};

}  // namespace fastprop
