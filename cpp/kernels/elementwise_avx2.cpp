// elementwise.hpp's loops with AVX2 (no FMA), for elementwise.cpp after a CPU check.
#define FASTPROP_ISA avx2
#include "elementwise_isa.inc"
