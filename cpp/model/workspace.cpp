#include "model/workspace.hpp"

#include <algorithm>

namespace fastprop {

template <class T>
std::size_t Workspace<T>::chunk_rows(const Layout& layout, bool polled, bool sparse_input) {
    // Memory: z, a and δ of every layer after the input, plus the gathered x and y, per row.
    const std::size_t per_row =
        3 * layout.units_after_input() + (sparse_input ? 0 : layout.l_in()) + layout.l_out();
    constexpr std::size_t table_budget = std::size_t(1) << 23;  // entries
    std::size_t rows = table_budget / per_row;
    if (polled) {
        // Time: the chunk is the unit between two checks for Ctrl-C, so its forward and
        // backward work (6 flops per weight per row) is kept near 12 GFLOP, well under 0.1 s
        // here.
        std::size_t weights = 0;
        for (std::size_t i = 0; i < layout.n(); ++i) weights += layout[i].l_in * layout[i].l_out;
        constexpr double flop_budget = 12e9;
        const double by_time = flop_budget / (6.0 * double(std::max<std::size_t>(weights, 1)));
        rows = std::min(rows, std::size_t(std::max(by_time, 1.0)));
    }
    return std::clamp<std::size_t>(rows, min_chunk_rows, 8192);
}

template <class T> void Workspace<T>::reserve(const Layout& layout, std::size_t rows) {
    if (rows <= rows_ && z_.size() == layout.n() + 1) return;
    rows = std::max(rows, rows_);
    const std::size_t n = layout.n();
    z_.assign(n + 1, 0);
    a_.assign(n + 1, 0);
    delta_.assign(n + 1, 0);
    std::size_t offset = 0;
    for (std::size_t i = 1; i <= n; ++i) {
        const std::size_t size = Layout::checked_mul(rows, layout.layers()[i]);
        z_[i] = offset;
        offset = Layout::checked_add(offset, size);
        delta_[i] = offset;
        offset = Layout::checked_add(offset, size);
        if (i < n) {
            a_[i] = offset;
            offset = Layout::checked_add(offset, size);
        }
    }
    table_.resize(offset);
    rows_ = rows;
}

template <class T> Workspace<T>& Workspace<T>::half() {
    if (!half_) half_ = std::make_unique<Workspace>();
    return *half_;
}

template class Workspace<float>;
template class Workspace<double>;

}  // namespace fastprop
