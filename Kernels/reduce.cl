// CytoCL: deterministic two-pass reductions (no atomics).

// Per-channel sums of [N][C][P] data (the bias gradient of a lone convolution,
// P = H*W; the conv blocks and dense layers sum their bias gradients inside
// their own kernels). The backend picks the pass-1 kernel from its DeviceTuning:
// channel_sum_partial for GPUs, channel_sum_vec for the CPU device class.
// Pass 1: work-group (g, c), g = n*GP + j, sums chunk
// j (elements j*chunk ..< (j+1)*chunk) of plane (n, c) in local memory and writes
// partial[c*(N*GP) + g]. global = (L, N*GP, C), local = (L, 1, 1), scratch = L
// floats, L a power of two.
__kernel void channel_sum_partial(__global const float* x, __global float* partial, __local float* scratch,
                                  int N, int C, int P, int GP, int chunk)
{
    const int lid = get_local_id(0), L = get_local_size(0);
    const int g = get_group_id(1), c = get_group_id(2);
    const int n = g / GP, j = g - n * GP;
    const int e0 = j * chunk, e1 = min(P, e0 + chunk);
    const __global float* src = x + ((size_t)n * C + c) * P;
    float s = 0.0f;
    for (int e = e0 + lid; e < e1; e += L) s += src[e];
    scratch[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = L / 2; h > 0; h >>= 1) {
        if (lid < h) scratch[lid] += scratch[lid + h];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) partial[(size_t)c * N * GP + g] = scratch[0];
}

// Pass 1 for the CPU device class: one work-item per (g, c) sums its chunk with 8-wide
// vector loads (no local memory, no barriers) and writes partial[c*(N*GP) + g].
// global = (N*GP, C), local = (1, 1).
__kernel void channel_sum_vec(__global const float* x, __global float* partial,
                              int N, int C, int P, int GP, int chunk)
{
    const int g = get_global_id(0), c = get_global_id(1);
    if (g >= N * GP || c >= C) return;
    const int n = g / GP, j = g - n * GP;
    const int e0 = j * chunk, e1 = min(P, e0 + chunk);
    const __global float* src = x + ((size_t)n * C + c) * P;
    float8 acc = 0.0f;
    int e = e0;
    for (; e + 8 <= e1; e += 8) acc += vload8(0, src + e);
    float s = ((acc.s0 + acc.s1) + (acc.s2 + acc.s3)) + ((acc.s4 + acc.s5) + (acc.s6 + acc.s7));
    for (; e < e1; ++e) s += src[e];
    partial[(size_t)c * N * GP + g] = s;
}

// Pass 2: out[i] = sum_j partial[i*G + j], j in order (after the channel sums,
// and after the filter gradient of a lone convolution). global = (rows).
__kernel void reduce_rows(__global const float* partial, __global float* out, int rows, int G)
{
    const int i = get_global_id(0);
    if (i >= rows) return;
    const __global float* p = partial + (size_t)i * G;
    float s = 0.0f;
    for (int j = 0; j < G; ++j) s += p[j];
    out[i] = s;
}

// Pass 2 for several reductions in one launch (the filter and bias gradients of
// every convolution of a backward pass). Segment s is four ints of `table`:
// first row (rows are numbered across segments, ascending), offset of its
// partial sums, number of partials per row G, and offset of its first output.
// out[dst + r] = sum_j partial[off + r*G + j], j in order (as reduce_rows).
// global = (total rows).
__kernel void reduce_segments(__global const float* partial, __global float* out,
                              __global const int* table, int segments, int rows)
{
    const int i = get_global_id(0);
    if (i >= rows) return;
    int s = 0;
    while (s + 1 < segments && table[4 * (s + 1)] <= i) ++s;
    const int r = i - table[4 * s];
    const int G = table[4 * s + 2];
    const __global float* p = partial + table[4 * s + 1] + (size_t)r * G;
    float t = 0.0f;
    for (int j = 0; j < G; ++j) t += p[j];
    out[table[4 * s + 3] + r] = t;
}
