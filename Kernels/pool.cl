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

// One work-item per input pixel: it receives its window's gradient when it is
// the window's first maximum in row-major order, zero otherwise (also for the
// odd trailing row/column that no window covers). global = (W, H, N*C).
__kernel void maxpool_bwd(__global const float* in, __global const float* gout, __global float* gin,
                          int NC, int H, int W)
{
    const int x = get_global_id(0), y = get_global_id(1), p = get_global_id(2);
    if (x >= W || y >= H || p >= NC) return;
    const int OH = H / 2, OW = W / 2;
    const int wy = y >> 1, wx = x >> 1;
    float g = 0.0f;
    if (wy < OH && wx < OW) {
        const __global float* s = in + ((size_t)p * H + 2 * wy) * W + 2 * wx;
        int best = 0;
        float m = s[0];
        if (s[1] > m) { m = s[1]; best = 1; }
        if (s[W] > m) { m = s[W]; best = 2; }
        if (s[W + 1] > m) { m = s[W + 1]; best = 3; }
        const int me = ((y & 1) << 1) | (x & 1);
        if (me == best) g = gout[((size_t)p * OH + wy) * OW + wx];
    }
    gin[((size_t)p * H + y) * W + x] = g;
}
