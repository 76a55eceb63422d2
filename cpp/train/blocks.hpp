// Sums over a batch taken in a fixed tree of blocks, so that one process and any number of
// processes (data-parallel training, ARCHITECTURE.md) get the same bits.
//
// A batch of `rows` rows is cut into nb = ⌈rows / block_rows⌉ blocks of block_rows rows (the
// last one may be shorter). Block k gives g_k (its gradient, n values in the parameter
// layout, or none: n = 0) and E_k, each from one pass over its rows alone. They are summed
// in the binary tree over the block indices: node (h, j) covers blocks [j·2^h, (j+1)·2^h) ∩
// [0, nb) and
//     node(0, j) = g_j,   node(h, j) = node(h−1, 2j) + node(h−1, 2j+1)
// (the left child alone when the right one covers no block); the sum is node(H, 0), 2^H ≥ nb.
// A process that owns blocks [a, b) computes the largest nodes inside [a, b) (`nodes`), sends
// them, and every process completes the tree from every process's nodes. IEEE addition is
// commutative, so the bits depend on the tree alone, never on who computed which node.
//
// The tree is evaluated with a stack: nodes arrive in block order, a node merges with the one
// below it while both have the same level (they are siblings), and at the end the stack is
// folded from the top (each right spine of the tree that ends at nb).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "kernels/elementwise.hpp"

namespace fastprop::blocks {

struct Node {
    std::size_t level, first, end;  // node (level, first >> level): blocks [first, end)
};

inline std::size_t count(std::size_t rows, std::size_t block_rows) {
    return (rows + block_rows - 1) / block_rows;
}

// The blocks [a, b) of rank `rank` among `ranks`: contiguous, as even as integers allow.
inline std::pair<std::size_t, std::size_t> owned(std::size_t nb, std::size_t rank,
                                                 std::size_t ranks) {
    return {nb * rank / ranks, nb * (rank + 1) / ranks};
}

// The level of the root: the least H with 2^H >= nb.
inline std::size_t root_level(std::size_t nb) {
    std::size_t H = 0;
    while ((std::size_t(1) << H) < nb) ++H;
    return H;
}

// The largest nodes of the tree over nb blocks that lie inside [a, b), in block order.
inline std::vector<Node> nodes(std::size_t a, std::size_t b, std::size_t nb) {
    std::vector<Node> out;
    const std::size_t H = root_level(nb);
    for (std::size_t pos = a; pos < b;) {
        std::size_t h = 0;
        while (h < H) {
            const std::size_t size = std::size_t(1) << (h + 1);
            if (pos % size != 0 || std::min(pos + size, nb) > b) break;
            ++h;
        }
        const std::size_t end = std::min(pos + (std::size_t(1) << h), nb);
        out.push_back({h, pos, end});
        pos = end;
    }
    return out;
}

// The stack that evaluates the tree. Values are n-element buffers owned by the caller; a
// merge adds the right one into the left one in place.
template <class T> class Tree {
public:
    explicit Tree(std::size_t n) : n_(n) {}

    void push(std::size_t level, T* g, double E) {
        while (!stack_.empty() && stack_.back().level == level) {
            Entry left = stack_.back();
            stack_.pop_back();
            if (n_) elementwise::add(left.g, g, n_);
            E = left.E + E;
            g = left.g;
            ++level;
        }
        stack_.push_back({level, g, E});
    }

    // The root: the stack folded from the top. Returns the buffer that holds it.
    T* finish(double& E) {
        Entry acc = stack_.back();
        for (std::size_t k = stack_.size() - 1; k-- > 0;) {
            if (n_) elementwise::add(stack_[k].g, acc.g, n_);
            stack_[k].E = stack_[k].E + acc.E;
            acc = stack_[k];
        }
        stack_.clear();
        E = acc.E;
        return acc.g;
    }

    // push(level, g, E) of the last node, then finish, with the root's last addition
    // written to dest (n values) instead of into its left node (a copy of the root saved).
    T* finish_into(std::size_t level, T* g, double E, T* dest, double& E_root) {
        while (!stack_.empty() && stack_.back().level == level) {
            Entry left = stack_.back();
            stack_.pop_back();
            const bool last = stack_.empty();  // then this addition makes the root
            if (n_) add(last ? dest : left.g, left.g, g);
            E = left.E + E;
            g = last ? dest : left.g;
            ++level;
        }
        stack_.push_back({level, g, E});
        Entry acc = stack_.back();
        for (std::size_t k = stack_.size() - 1; k-- > 0;) {
            T* to = k == 0 ? dest : stack_[k].g;
            if (n_) add(to, stack_[k].g, acc.g);
            stack_[k].E = stack_[k].E + acc.E;
            stack_[k].g = to;
            acc = stack_[k];
        }
        stack_.clear();
        if (n_ && acc.g != dest) std::memcpy(dest, acc.g, n_ * sizeof(T));  // one node alone
        E_root = acc.E;
        return dest;
    }

    bool holds(const T* g) const {
        for (const Entry& e : stack_)
            if (e.g == g) return true;
        return false;
    }

private:
    // to = a + b, elementwise (to may be a); the rounding of elementwise::add
    void add(T* to, const T* a, const T* b) const {
        if (to == a) {
            elementwise::add(to, b, n_);
            return;
        }
        for (std::size_t i = 0; i < n_; ++i) to[i] = a[i] + b[i];
    }

    struct Entry {
        std::size_t level;
        T* g;
        double E;
    };
    std::size_t n_;
    std::vector<Entry> stack_;
};

}  // namespace fastprop::blocks
