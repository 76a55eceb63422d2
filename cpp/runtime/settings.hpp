// The settings the core reads from the environment, once, and what it made of them.
//
//   FASTPROP_NUM_THREADS   threads of the pool: a positive integer, at most max_threads()
//                          (larger values are capped); unset, OMP_NUM_THREADS is used as
//                          joblib's and loky's workers set it (its first entry when it is a
//                          list), else the number of CPUs.
//   FASTPROP_MAX_ISA       the most capable kernels to use: portable, avx2 or avx512.
//
// A value the core cannot use is ignored (the default applies) and reported by
// ignored_settings(), which the Python package turns into a RuntimeWarning at import.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/cpu.hpp"

namespace fastprop {

struct IgnoredSetting {
    std::string variable;  // e.g. "FASTPROP_NUM_THREADS"
    std::string value;     // as found in the environment
    std::string effect;    // e.g. "ignored (the default is the number of CPUs): expected a
                           // positive integer"
};

// How a variable of the environment is read: std::getenv, or a stand-in for the tests.
using GetEnv = std::function<const char*(const char*)>;

// The threads the environment asks for, when it asks for a usable number.
std::optional<std::size_t> threads_from_environment(const GetEnv& read_env = std::getenv);
// The cap on the kernels the environment asks for, when it names one.
std::optional<Isa> max_isa_from_environment(const GetEnv& read_env = std::getenv);
// Every setting of the environment that is ignored or capped, with why.
std::vector<IgnoredSetting> ignored_settings(const GetEnv& read_env = std::getenv);

// Parsing, exposed for the tests: a positive integer as strtol reads it in full (" 4" and
// "+2" are 4 and 2; "3x", "0", "-1" and "" are not); values past max_threads() are capped and
// flagged.
struct ThreadCount {
    std::optional<std::size_t> value;
    bool capped = false;
};
ThreadCount parse_thread_count(const char* text);

}  // namespace fastprop
