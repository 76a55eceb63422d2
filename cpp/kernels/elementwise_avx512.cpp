// elementwise.hpp's loops with AVX-512 (no FMA), for elementwise.cpp after a CPU check.
#define FASTPROP_ISA avx512
#include "elementwise_isa.inc"
