// CytoCL: 2x2 stride-2 max-pooling (floor mode), NCHW float32.
//
// Both kernels handle 8 windows of one window row per work-item with vector
// loads (16 input floats per row) and de-interleave even/odd columns in
// registers; a partial block at the row end falls back to scalar code.
// maxpool_fwd runs only for the lone max-pool op and for conv blocks built with
// VW = 1 (otherwise conv3x3 pools its own outputs). maxpool_bwd with relu set
// and a padded destination is the first launch of each conv block's backward
// pass.

#define EVEN16(v) ((float8)((v).s0, (v).s2, (v).s4, (v).s6, (v).s8, (v).sa, (v).sc, (v).se))
#define ODD16(v)  ((float8)((v).s1, (v).s3, (v).s5, (v).s7, (v).s9, (v).sb, (v).sd, (v).sf))
#define ZIP8(a, b) ((float16)((a).s0, (b).s0, (a).s1, (b).s1, (a).s2, (b).s2, (a).s3, (b).s3, \
                              (a).s4, (b).s4, (a).s5, (b).s5, (a).s6, (b).s6, (a).s7, (b).s7))

// global = (ceil(OW/8), OH, N*C)
__kernel void maxpool_fwd(__global const float* in, __global float* out, int NC, int H, int W)
{
    const int xv = get_global_id(0), y = get_global_id(1), p = get_global_id(2);
    const int OH = H / 2, OW = W / 2;
    const int x0 = xv * 8;
    if (x0 >= OW || y >= OH || p >= NC) return;
    const __global float* s = in + ((size_t)p * H + 2 * y) * W + 2 * x0;
    __global float* d = out + ((size_t)p * OH + y) * OW + x0;
    if (x0 + 8 <= OW) {
        const float16 a = vload16(0, s), b = vload16(0, s + W);
        float8 m = EVEN16(a);
        const float8 v01 = ODD16(a), v10 = EVEN16(b), v11 = ODD16(b);
        m = select(m, v01, v01 > m);
        m = select(m, v10, v10 > m);
        m = select(m, v11, v11 > m);
        vstore8(m, 0, d);
        return;
    }
    for (int k = 0; k < OW - x0; ++k) {
        const __global float* q = s + 2 * k;
        float m = q[0];
        if (q[1] > m) m = q[1];
        if (q[W] > m) m = q[W];
        if (q[W + 1] > m) m = q[W + 1];
        d[k] = m;
    }
}

// Every input position receives its window's gradient when it is the window's
// first maximum in row-major order, zero otherwise (also the odd trailing
// row/column that no window covers). Plain float compares: -0 and +0 tie. A work-item covers input columns
// [16*xv, 16*xv+16) of input rows 2*wy and 2*wy+1.
// With relu set, `in` is a ReLU output and the gradient is also masked by
// in > 0 (ReLU backward fused in: only the window's maximum can receive a
// gradient, so the mask is maximum > 0).
// gin is written through a strided view: input row y of plane p lands at
// gin[gOff + p*gPlane + y*gRow] (gRow = W, gPlane = H*W, gOff = 0 for a dense
// gradient; the interior of the zero-padded data-gradient input otherwise).
// global = (ceil(W/16), (H+1)/2, N*C).
__kernel void maxpool_bwd(__global const float* in, __global const float* gout, __global float* gin,
                          int NC, int H, int W, int relu, int gRow, int gPlane, int gOff)
{
    const int xv = get_global_id(0), wy = get_global_id(1), p = get_global_id(2);
    const int OH = H / 2, OW = W / 2;
    const int c0 = xv * 16;
    if (c0 >= W || wy >= (H + 1) / 2 || p >= NC) return;
    const int cend = min(W, c0 + 16);
    const size_t off = ((size_t)p * H + 2 * wy) * W + c0;
    __global float* d0 = gin + gOff + (size_t)p * gPlane + (size_t)(2 * wy) * gRow + c0;
    if (wy == OH) {            // odd trailing row
        if (cend - c0 == 16) vstore16((float16)0.0f, 0, d0);
        else for (int x = 0; x < cend - c0; ++x) d0[x] = 0.0f;
        return;
    }
    __global float* d1 = d0 + gRow;
    const __global float* s0 = in + off;
    const __global float* s1 = s0 + W;
    const __global float* g = gout + ((size_t)p * OH + wy) * OW + c0 / 2;
    if (c0 + 16 <= 2 * OW) {
        const float16 a = vload16(0, s0), b = vload16(0, s1);
        const float8 v00 = EVEN16(a), v01 = ODD16(a), v10 = EVEN16(b), v11 = ODD16(b);
        const int8 c1 = v01 > v00;
        float8 m = select(v00, v01, c1);
        const int8 c2 = v10 > m;
        m = select(m, v10, c2);
        const int8 c3 = v11 > m;
        m = select(m, v11, c3);
        const float8 z = (float8)0.0f;
        const float8 gv = relu ? select(z, vload8(0, g), m > z) : vload8(0, g);
        const float8 d11 = select(z, gv, c3);
        const float8 d10 = select(z, gv, c2 & ~c3);
        const float8 d01 = select(z, gv, c1 & ~c2 & ~c3);
        const float8 d00 = select(gv, z, c1 | c2 | c3);
        vstore16(ZIP8(d00, d01), 0, d0);
        vstore16(ZIP8(d10, d11), 0, d1);
        return;
    }
    for (int x = c0; x < cend; x += 2) {
        const int k = x - c0;
        if (x + 1 >= W || x / 2 >= OW) {   // odd trailing column
            d0[k] = 0.0f; d1[k] = 0.0f;
            continue;
        }
        const float v00 = s0[k], v01 = s0[k + 1], v10 = s1[k], v11 = s1[k + 1];
        int best = 0;
        float m = v00;
        if (v01 > m) { m = v01; best = 1; }
        if (v10 > m) { m = v10; best = 2; }
        if (v11 > m) { m = v11; best = 3; }
        const float gv = relu && !(m > 0.0f) ? 0.0f : g[k / 2];
        d0[k] = best == 0 ? gv : 0.0f;
        d0[k + 1] = best == 1 ? gv : 0.0f;
        d1[k] = best == 2 ? gv : 0.0f;
        d1[k + 1] = best == 3 ? gv : 0.0f;
    }
}
