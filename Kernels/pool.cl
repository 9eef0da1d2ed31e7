// CytoCL: 2x2 stride-2 max-pooling (floor mode), NCHW float32.

// global = (OW, OH, N*C)
__kernel void maxpool_fwd(__global const float* in, __global float* out, int NC, int H, int W)
{
    const int x = get_global_id(0), y = get_global_id(1), p = get_global_id(2);
    const int OH = H / 2, OW = W / 2;
    if (x >= OW || y >= OH || p >= NC) return;
    const __global float* s = in + ((size_t)p * H + 2 * y) * W + 2 * x;
    float m = s[0];
    if (s[1] > m) m = s[1];
    if (s[W] > m) m = s[W];
    if (s[W + 1] > m) m = s[W + 1];
    out[((size_t)p * OH + y) * OW + x] = m;
}

// One work-item per pair of input rows (one window row) of one plane: every
// input position receives its window's gradient when it is the window's first
// maximum in row-major order, zero otherwise (also the odd trailing row/column
// that no window covers). global = ((H+1)/2, N*C).
__kernel void maxpool_bwd(__global const float* in, __global const float* gout, __global float* gin,
                          int NC, int H, int W)
{
    const int wy = get_global_id(0), p = get_global_id(1);
    const int OH = H / 2, OW = W / 2;
    if (wy >= (H + 1) / 2 || p >= NC) return;
    const size_t plane = (size_t)p * H * W;
    __global float* d0 = gin + plane + (size_t)(2 * wy) * W;
    if (wy == OH) {            // odd trailing row
        for (int x = 0; x < W; ++x) d0[x] = 0.0f;
        return;
    }
    __global float* d1 = d0 + W;
    const __global float* s0 = in + plane + (size_t)(2 * wy) * W;
    const __global float* s1 = s0 + W;
    const __global float* g = gout + ((size_t)p * OH + wy) * OW;
    for (int wx = 0; wx < OW; ++wx) {
        const int x = 2 * wx;
        const float v00 = s0[x], v01 = s0[x + 1], v10 = s1[x], v11 = s1[x + 1];
        int best = 0;
        float m = v00;
        if (v01 > m) { m = v01; best = 1; }
        if (v10 > m) { m = v10; best = 2; }
        if (v11 > m) { best = 3; }
        const float gv = g[wx];
        d0[x] = best == 0 ? gv : 0.0f;
        d0[x + 1] = best == 1 ? gv : 0.0f;
        d1[x] = best == 2 ? gv : 0.0f;
        d1[x + 1] = best == 3 ? gv : 0.0f;
    }
    if (W & 1) { d0[W - 1] = 0.0f; d1[W - 1] = 0.0f; }
}
