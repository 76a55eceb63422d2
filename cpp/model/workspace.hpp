// Workspace<T>: the dynamic-programming table (z_i, a_i, δ_i for a chunk of rows), grown to
// the largest size seen and reused, so that steady-state calls allocate nothing.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <vector>

#include "model/layout.hpp"

namespace fastprop {

template <class T> class Workspace {
public:
    // The most rows the table holds at once for this layout: bigger batches are run in
    // chunks of this many rows, so memory stays bounded whatever the batch size. Where a
    // chunk is the unit between two checks for Ctrl-C (`polled`: forward, loss, gradient),
    // its work is bounded too. Training's chunks are bounded by memory alone: a minibatch in
    // one chunk needs no second pass over ∂E/∂W to add up parts. The trainer checks between
    // minibatches and, in a batch too large for one chunk, between its chunks, each at most a
    // table's worth (tens of ms for W3's layers).
    // A sparse X (sparse_input) is read in place: its rows take no room in the table.
    static std::size_t chunk_rows(const Layout& layout, bool polled = true,
                                  bool sparse_input = false);
    // Never fewer rows than this in a chunk (chunk_rows' lower clamp): a batch of at most
    // this many rows is one chunk, whatever the layout.
    static constexpr std::size_t min_chunk_rows = 64;
    // min(t, chunk_rows(...)), without the sums over the layout for small batches (a W1 step).
    static std::size_t chunk_for(std::size_t t, const Layout& layout, bool polled = true,
                                 bool sparse_input = false) {
        return t <= min_chunk_rows ? t : std::min(t, chunk_rows(layout, polled, sparse_input));
    }

    // Make the table hold `rows` rows of every z_i, a_i, δ_i (1 <= i <= n). Grows, never
    // shrinks.
    void reserve(const Layout& layout, std::size_t rows);
    std::size_t rows() const { return rows_; }

    T* z(std::size_t i) { return table_.data() + z_[i]; }          // (rows, l_i), 1 <= i <= n
    T* a(std::size_t i) { return table_.data() + a_[i]; }          // (rows, l_i), 1 <= i <= n−1
    T* delta(std::size_t i) { return table_.data() + delta_[i]; }  // (rows, l_i), 1 <= i <= n

    // For the second half of a chunk that the passes split over two threads: a workspace of
    // its own (table and gradient), made on first use and kept.
    Workspace& half();
    std::vector<T> grad;  // the half's gradient, in the parameter buffer's layout

private:
    std::unique_ptr<Workspace> half_;
    std::vector<T> table_;
    std::vector<std::size_t> z_, a_, delta_;  // offsets into table_, indexed by layer
    std::size_t rows_ = 0;
};

}  // namespace fastprop
