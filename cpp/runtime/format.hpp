// Numbers in messages, written as Python writes them (1.0, -0.1, 1e-06, inf), so that an error
// raised by the core reads like one raised by Python.
#pragma once

#include <charconv>
#include <cmath>
#include <string>

namespace fastprop {

inline std::string format_number(double x) {
    if (std::isnan(x)) return "nan";
    if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
    char buffer[32];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, x);  // shortest round trip
    std::string out(buffer, result.ptr);
    if (out.find_first_of(".e") == std::string::npos) out += ".0";
    return out;
}

}  // namespace fastprop
