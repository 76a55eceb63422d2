#include "runtime/settings.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>

#include "runtime/threads.hpp"

namespace fastprop {

ThreadCount parse_thread_count(const char* text) {
    ThreadCount out;
    if (text == nullptr) return out;
    char* end = nullptr;
    errno = 0;
    const long long k = std::strtoll(text, &end, 10);
    if (end == text || *end != '\0' || k <= 0) return out;
    if (errno == ERANGE || static_cast<unsigned long long>(k) > max_threads()) {
        out.value = max_threads();
        out.capped = true;
        return out;
    }
    out.value = static_cast<std::size_t>(k);
    return out;
}

namespace {

// OMP_NUM_THREADS may be a list for nested levels ("4,2"): the first entry is the outer one.
std::string first_entry(const char* text) {
    const char* comma = std::strchr(text, ',');
    return comma ? std::string(text, comma) : std::string(text);
}

}  // namespace

std::optional<std::size_t> threads_from_environment(const GetEnv& read_env) {
    if (const char* own = read_env("FASTPROP_NUM_THREADS")) {
        const ThreadCount k = parse_thread_count(own);
        if (k.value) return k.value;
    }
    if (const char* omp = read_env("OMP_NUM_THREADS")) {
        const ThreadCount k = parse_thread_count(first_entry(omp).c_str());
        if (k.value) return k.value;
    }
    return std::nullopt;
}

std::optional<Isa> max_isa_from_environment(const GetEnv& read_env) {
    const char* s = read_env("FASTPROP_MAX_ISA");
    if (s == nullptr) return std::nullopt;
    for (Isa isa : {Isa::portable, Isa::avx2, Isa::avx512})
        if (std::strcmp(s, isa_name(isa)) == 0) return isa;
    return std::nullopt;
}

std::vector<IgnoredSetting> ignored_settings(const GetEnv& read_env) {
    std::vector<IgnoredSetting> out;
    const std::string cap = std::to_string(max_threads());
    if (const char* s = read_env("FASTPROP_MAX_ISA"); s && !max_isa_from_environment(read_env))
        out.push_back({"FASTPROP_MAX_ISA", s,
                       "ignored (the kernels are not capped): expected 'portable', 'avx2' or "
                       "'avx512'"});
    if (const char* s = read_env("FASTPROP_NUM_THREADS")) {
        const ThreadCount k = parse_thread_count(s);
        if (!k.value)
            out.push_back({"FASTPROP_NUM_THREADS", s,
                           "ignored (the default is the number of CPUs): expected a positive "
                           "integer"});
        else if (k.capped)
            out.push_back({"FASTPROP_NUM_THREADS", s, "capped at " + cap + " threads, the most "
                           "fastprop uses (max(64, 4 x the number of CPUs))"});
    }
    return out;
}

}  // namespace fastprop
