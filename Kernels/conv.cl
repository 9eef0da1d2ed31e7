// CytoCL: 3x3 "valid" convolutions, stride 1, NCHW float32.
//
// Every kernel vectorises along x: a work-item computes VW consecutive output
// pixels for a block of OCB output channels, so each input load is reused OCB
// times and CPU devices get explicit SIMD without relying on implicit
// vectorisation. The backend builds this file with -DVW from its DeviceTuning:
// 8 for the CPU device class (PoCL, rusticl), 4 for GPUs, CYTOCL_VECTOR_WIDTH
// (1, 2, 4 or 8) overriding both.
//
// Buffers made by the OpenCL backend carry a zeroed slack of 256 bytes (64
// floats) past their end, so a vector that straddles the end of a row (or of
// the buffer) may read past the row; those lanes are never stored.

#ifndef VW
#define VW 8
#endif
#ifndef OCB
#define OCB 4
#endif

#if VW == 1
  #define VEC float
  #define VLOAD(p) (*(p))
  #define VSTORE(v, p) (*(p) = (v))
  #define VSUM(v) (v)
  #define LANE(v, j) (v)
  #define LANE_INDEX 0.0f
#elif VW == 2
  #define VEC float2
  #define VLOAD(p) vload2(0, (p))
  #define VSTORE(v, p) vstore2((v), 0, (p))
  #define VSUM(v) ((v).s0 + (v).s1)
  #define LANE(v, j) (((float*)&(v))[j])
  #define LANE_INDEX ((VEC)(0, 1))
  #define HVEC float
  #define HSTORE(v, p) (*(p) = (v))
  #define HLANE(v, j) (v)
#elif VW == 4
  #define VEC float4
  #define VLOAD(p) vload4(0, (p))
  #define VSTORE(v, p) vstore4((v), 0, (p))
  #define VSUM(v) (((v).s0 + (v).s1) + ((v).s2 + (v).s3))
  #define LANE(v, j) (((float*)&(v))[j])
  #define LANE_INDEX ((VEC)(0, 1, 2, 3))
  #define HVEC float2
  #define HSTORE(v, p) vstore2((v), 0, (p))
  #define HLANE(v, j) ((j) == 0 ? (v).s0 : (v).s1)
#elif VW == 8
  #define VEC float8
  #define VLOAD(p) vload8(0, (p))
  #define VSTORE(v, p) vstore8((v), 0, (p))
  #define VSUM(v) ((((v).s0 + (v).s1) + ((v).s2 + (v).s3)) + (((v).s4 + (v).s5) + ((v).s6 + (v).s7)))
  #define LANE(v, j) (((float*)&(v))[j])
  #define LANE_INDEX ((VEC)(0, 1, 2, 3, 4, 5, 6, 7))
  #define HVEC float4
  #define HSTORE(v, p) vstore4((v), 0, (p))
  #define HLANE(v, j) ((j) == 0 ? (v).s0 : (j) == 1 ? (v).s1 : (j) == 2 ? (v).s2 : (v).s3)
#else
  #error "VW must be 1, 2, 4 or 8"
#endif

// Generic 3x3 valid convolution of [N][IC][*][inRow] planes into [N][OC][OH][OW].
// Weight element (o, i, ky, kx) is w[wBase + o*wO + i*wI + ky*wY + kx*wX], so the
// same kernel runs the forward pass (w[o][i][ky][kx]) and the data gradient
// (transposed, flipped weights over a zero-padded gradient).
// A work-item computes RY output rows: 2 whenever VW > 1 (on every device class:
// the four input rows they read are loaded once, so every vector load feeds more
// multiply-adds), 1 when VW = 1. With pool set (RY = 2 and VW > 1 only; the
// backend passes it for the conv blocks' forward pass), the work-item also
// writes the 2x2 max-pool of its two rows into `pooled`, saving the max-pool
// launch. The data gradient runs this kernel too, over the zero-padded output
// gradient, with wBase = 8, wO = 9, wI = IC*9, wY = -3, wX = -1 (the layer's
// weights transposed and flipped), no bias and no ReLU.
// global = (ceil(OW/VW), ceil(OH/RY), N*ceil(OC/OCB)).
#ifndef RY
  #if VW > 1
    #define RY 2
  #else
    #define RY 1
  #endif
#endif

// Multiply-adds of one input row (three shifted vectors) into output row ACC
// for tap row KY of output channel o. The loops over o carry #pragma unroll at
// every use: without it the forward convolution measured 1.4x slower on PoCL.
#define CONV_TAP(ACC, o, A0, A1, A2, KY)                        \
    {                                                           \
        const int b = wo[o] + wi + (KY) * wY;                   \
        ACC[o] += A0 * w[b];                                    \
        ACC[o] += A1 * w[b + wX];                               \
        ACC[o] += A2 * w[b + 2 * wX];                           \
    }

__kernel void conv3x3(__global const float* in, __global const float* w, __global const float* bias,
                      __global float* out,
                      int N, int IC, int inRow, int inPlane,
                      int OC, int OH, int OW,
                      int wBase, int wO, int wI, int wY, int wX,
                      int useBias, int relu, __global float* pooled, int pool)
{
    const int xv = get_global_id(0), y = get_global_id(1) * RY, z = get_global_id(2);
    const int nxv = (OW + VW - 1) / VW;
    const int nob = (OC + OCB - 1) / OCB;
    if (xv >= nxv || y >= OH || z >= N * nob) return;
    const int n = z / nob, o0 = (z % nob) * OCB;
    const int x0 = xv * VW;

    VEC acc[OCB];
#if RY == 2
    VEC acc1[OCB];
    // The second row exists unless y is the last row; then its input row is
    // clamped to a valid one and its result dropped.
    const int two = y + 1 < OH;
#endif
    int wo[OCB];
    #pragma unroll
    for (int o = 0; o < OCB; ++o) {
        const int oo = min(o0 + o, OC - 1);
        wo[o] = wBase + oo * wO;
        acc[o] = (VEC)(useBias ? bias[oo] : 0.0f);
#if RY == 2
        acc1[o] = acc[o];
#endif
    }
    const __global float* src = in + (size_t)n * IC * inPlane + (size_t)y * inRow + x0;
    for (int i = 0; i < IC; ++i) {
        const __global float* p = src + (size_t)i * inPlane;
        const int wi = i * wI;
#if RY == 2
        {
            const VEC a0 = VLOAD(p), a1 = VLOAD(p + 1), a2 = VLOAD(p + 2);
            #pragma unroll
            for (int o = 0; o < OCB; ++o) CONV_TAP(acc, o, a0, a1, a2, 0)
        }
        {
            const __global float* r = p + inRow;
            const VEC a0 = VLOAD(r), a1 = VLOAD(r + 1), a2 = VLOAD(r + 2);
            #pragma unroll
            for (int o = 0; o < OCB; ++o) CONV_TAP(acc, o, a0, a1, a2, 1)
            #pragma unroll
            for (int o = 0; o < OCB; ++o) CONV_TAP(acc1, o, a0, a1, a2, 0)
        }
        {
            const __global float* r = p + 2 * inRow;
            const VEC a0 = VLOAD(r), a1 = VLOAD(r + 1), a2 = VLOAD(r + 2);
            #pragma unroll
            for (int o = 0; o < OCB; ++o) CONV_TAP(acc, o, a0, a1, a2, 2)
            #pragma unroll
            for (int o = 0; o < OCB; ++o) CONV_TAP(acc1, o, a0, a1, a2, 1)
        }
        {
            const __global float* r = p + (two ? 3 : 2) * inRow;
            const VEC a0 = VLOAD(r), a1 = VLOAD(r + 1), a2 = VLOAD(r + 2);
            #pragma unroll
            for (int o = 0; o < OCB; ++o) CONV_TAP(acc1, o, a0, a1, a2, 2)
        }
#else
        #pragma unroll
        for (int ky = 0; ky < 3; ++ky) {
            const __global float* r = p + ky * inRow;
            const VEC a0 = VLOAD(r), a1 = VLOAD(r + 1), a2 = VLOAD(r + 2);
            #pragma unroll
            for (int o = 0; o < OCB; ++o) CONV_TAP(acc, o, a0, a1, a2, ky)
        }
#endif
    }
    const int lanes = min(VW, OW - x0);
    #pragma unroll
    for (int o = 0; o < OCB; ++o) {
        if (o0 + o >= OC) continue;
        if (relu) {
            acc[o] = fmax(acc[o], (VEC)0.0f);
#if RY == 2
            acc1[o] = fmax(acc1[o], (VEC)0.0f);
#endif
        }
        __global float* dst = out + (((size_t)n * OC + o0 + o) * OH + y) * OW + x0;
        #pragma unroll
        for (int rr = 0; rr < RY; ++rr) {
#if RY == 2
            if (rr == 1 && !two) continue;
            VEC v = rr == 0 ? acc[o] : acc1[o];
#else
            VEC v = acc[o];
#endif
            __global float* d = dst + rr * OW;
            if (lanes == VW) {
                VSTORE(v, d);
            } else {
                for (int j = 0; j < lanes; ++j) d[j] = LANE(v, j);
            }
        }
#if RY == 2 && VW > 1
        // Fused 2x2 max-pool (floor mode): rows y, y+1 (y is even) and lane pairs
        // (x0 is even) form VW/2 pooling windows, compared in the order of
        // maxpool_fwd (first maximum, row-major) so the result is identical.
        // Even/odd swizzles (no address taken, so the accumulators stay in registers).
        if (pool && two) {
            const int PH = OH / 2, PW = OW / 2, px0 = x0 / 2;
            __global float* pd = pooled + (((size_t)n * OC + o0 + o) * PH + y / 2) * PW + px0;
            HVEC m = acc[o].even, t = acc[o].odd;
            m = t > m ? t : m;
            t = acc1[o].even;
            m = t > m ? t : m;
            t = acc1[o].odd;
            m = t > m ? t : m;
            if (px0 + VW / 2 <= PW) {
                HSTORE(m, pd);
            } else {
                for (int j = 0; j < PW - px0; ++j) pd[j] = HLANE(m, j);
            }
        }
#endif
    }
}

// Copies gradOut [P][OH][OW] into the interior of a zero-padded [P][OH+4][PW]
// buffer with a 2-pixel border (PW >= OW+4), the input of the data-gradient
// convolution. Only the interior is written: the backend keeps one padded buffer
// per shape, zeroed once, so the border stays zero. global = (ceil(OW/VW), OH, P).
__kernel void pad_copy(__global const float* src, __global float* dst, int P, int OH, int OW, int PW)
{
    const int xv = get_global_id(0), y = get_global_id(1), p = get_global_id(2);
    const int x0 = xv * VW;
    if (x0 >= OW || y >= OH || p >= P) return;
    const __global float* s = src + ((size_t)p * OH + y) * OW + x0;
    __global float* d = dst + ((size_t)p * (OH + 4) + y + 2) * PW + 2 + x0;
    if (x0 + VW <= OW) {
        VSTORE(VLOAD(s), d);
    } else {
        for (int j = 0; j < OW - x0; ++j) d[j] = s[j];
    }
}

// The filter-gradient kernels read gradOut through a strided view: plane (n, o)
// row y starts at gout[gOff + (n*OC + o)*gPlane + y*gRow], so they read either a
// dense [N][OC][OH][OW] gradient (gRow = OW, gPlane = OH*OW, gOff = 0) or the
// interior of the zero-padded buffer the data gradient is computed from, which
// the fused max-pool/ReLU backward writes directly. With withBias set, the
// work-items of input channel 0 also sum gradOut for the bias gradient into
// partial rows OC*IC*9 + o, so one reduction pass finishes both.

// Filter gradient, pass 1, "rows" (the CPU device class's choice). One work-item
// per (chunk of R output rows of one image, o, i): it walks its rows in memory
// order, accumulating the nine taps of gradOut row y against input rows y..y+2
// in VW-wide registers, with no local memory or barrier. (Walking a column of rows per x vector instead was
// 2x slower on PoCL at 257 wide.) Writes
// partial[((o*IC + i)*9 + k) * chunks + chunk]; `reduce_rows` sums the chunks.
// global = (N*cpn, OC*IC), chunks = N*cpn, cpn = ceil(OH/R); the backend uses
// R = min(OH, 32) and groups of (1, up to 64).
__kernel void conv3x3_filter_rows(__global const float* in, __global const float* gout,
                                  __global float* partial,
                                  int N, int IC, int H, int W, int OC, int cpn, int R,
                                  int gRow, int gPlane, int gOff, int withBias, int pOff)
{
    partial += pOff;
    const int chunk = get_global_id(0), z = get_global_id(1);
    const int chunks = N * cpn;
    if (chunk >= chunks || z >= OC * IC) return;
    const int o = z / IC, i = z % IC;
    const int OH = H - 2, OW = W - 2;
    const int n = chunk / cpn;
    const int y0 = (chunk % cpn) * R, y1 = min(OH, y0 + R);
    const __global float* g = gout + gOff + ((size_t)n * OC + o) * gPlane;
    const __global float* p = in + ((size_t)n * IC + i) * H * W;
    const VEC laneIdx = LANE_INDEX;
    VEC a00 = 0, a01 = 0, a02 = 0, a10 = 0, a11 = 0, a12 = 0, a20 = 0, a21 = 0, a22 = 0, ab = 0;
    const int full = OW / VW;
    // Row-major walk: output row y against input rows y, y+1, y+2.
    for (int y = y0; y < y1; ++y) {
        const __global float* gr = g + (size_t)y * gRow;
        const __global float* q0 = p + (size_t)y * W;
        const __global float* q1 = q0 + W;
        const __global float* q2 = q1 + W;
        for (int x0 = 0; x0 < full * VW; x0 += VW) {
            const VEC gv = VLOAD(gr + x0);
            ab += gv;
            a00 += gv * VLOAD(q0 + x0); a01 += gv * VLOAD(q0 + x0 + 1); a02 += gv * VLOAD(q0 + x0 + 2);
            a10 += gv * VLOAD(q1 + x0); a11 += gv * VLOAD(q1 + x0 + 1); a12 += gv * VLOAD(q1 + x0 + 2);
            a20 += gv * VLOAD(q2 + x0); a21 += gv * VLOAD(q2 + x0 + 1); a22 += gv * VLOAD(q2 + x0 + 2);
        }
        if (full * VW < OW) {
            const int x0 = full * VW;
            const VEC lim = (VEC)((float)(OW - x0));
            const VEC z0 = (VEC)0.0f;
            const VEC gv = laneIdx < lim ? VLOAD(gr + x0) : z0;
            ab += gv;
            a00 += gv * (laneIdx < lim ? VLOAD(q0 + x0) : z0);
            a01 += gv * (laneIdx < lim ? VLOAD(q0 + x0 + 1) : z0);
            a02 += gv * (laneIdx < lim ? VLOAD(q0 + x0 + 2) : z0);
            a10 += gv * (laneIdx < lim ? VLOAD(q1 + x0) : z0);
            a11 += gv * (laneIdx < lim ? VLOAD(q1 + x0 + 1) : z0);
            a12 += gv * (laneIdx < lim ? VLOAD(q1 + x0 + 2) : z0);
            a20 += gv * (laneIdx < lim ? VLOAD(q2 + x0) : z0);
            a21 += gv * (laneIdx < lim ? VLOAD(q2 + x0 + 1) : z0);
            a22 += gv * (laneIdx < lim ? VLOAD(q2 + x0 + 2) : z0);
        }
    }
    __global float* d = partial + (size_t)z * 9 * chunks + chunk;
    d[0] = VSUM(a00); d[chunks] = VSUM(a01); d[2 * chunks] = VSUM(a02);
    d[3 * chunks] = VSUM(a10); d[4 * chunks] = VSUM(a11); d[5 * chunks] = VSUM(a12);
    d[6 * chunks] = VSUM(a20); d[7 * chunks] = VSUM(a21); d[8 * chunks] = VSUM(a22);
    if (withBias && i == 0) partial[((size_t)OC * IC * 9 + o) * chunks + chunk] = VSUM(ab);
}

// Filter gradient, pass 1, "partial" (CYTOCL_FILTER_KERNEL=partial, and the
// fallback of "tiled" when not one input row fits in local memory). One
// work-group per (row chunk, o, i): its L work-items
// stride over the x vectors of the rows in the chunk, each accumulating the nine
// taps, then the group reduces in local memory and writes
// partial[((o*IC + i)*9 + k) * chunks + chunk]. `reduce_rows` sums the chunks.
// Chunks may span images (rowsPerChunk rows of the N*OH in all).
// global = (L, chunks, OC*IC), local = (L, 1, 1), scratch = L*10 floats (nine
// taps and the bias sum per work-item).
__kernel void conv3x3_filter_partial(__global const float* in, __global const float* gout,
                                     __global float* partial, __local float* scratch,
                                     int N, int IC, int H, int W, int OC,
                                     int chunks, int rowsPerChunk,
                                     int gRow, int gPlane, int gOff, int withBias, int pOff)
{
    partial += pOff;
    const int lid = get_local_id(0), L = get_local_size(0);
    const int chunk = get_group_id(1), z = get_group_id(2);
    const int o = z / IC, i = z % IC;
    const int OH = H - 2, OW = W - 2;
    const int nxv = (OW + VW - 1) / VW;
    const int rows = N * OH;
    const int r0 = chunk * rowsPerChunk, r1 = min(rows, r0 + rowsPerChunk);

    VEC a00 = 0, a01 = 0, a02 = 0, a10 = 0, a11 = 0, a12 = 0, a20 = 0, a21 = 0, a22 = 0, ab = 0;
    const VEC laneIdx = LANE_INDEX;
    for (int r = r0; r < r1; ++r) {
        const int n = r / OH, y = r % OH;
        const __global float* g = gout + gOff + ((size_t)n * OC + o) * gPlane + (size_t)y * gRow;
        const __global float* p = in + (((size_t)n * IC + i) * H + y) * W;
        for (int xv = lid; xv < nxv; xv += L) {
            const int x0 = xv * VW;
            VEC gv = VLOAD(g + x0);
            const __global float* q = p + x0;
            VEC b00 = VLOAD(q), b01 = VLOAD(q + 1), b02 = VLOAD(q + 2);
            VEC b10 = VLOAD(q + W), b11 = VLOAD(q + W + 1), b12 = VLOAD(q + W + 2);
            VEC b20 = VLOAD(q + 2 * W), b21 = VLOAD(q + 2 * W + 1), b22 = VLOAD(q + 2 * W + 2);
            if (x0 + VW > OW) {
                // Lanes past the row end read neighbouring data: zero both factors.
                const VEC lim = (VEC)((float)(OW - x0));
                gv = laneIdx < lim ? gv : (VEC)0.0f;
                b00 = laneIdx < lim ? b00 : (VEC)0.0f; b01 = laneIdx < lim ? b01 : (VEC)0.0f;
                b02 = laneIdx < lim ? b02 : (VEC)0.0f; b10 = laneIdx < lim ? b10 : (VEC)0.0f;
                b11 = laneIdx < lim ? b11 : (VEC)0.0f; b12 = laneIdx < lim ? b12 : (VEC)0.0f;
                b20 = laneIdx < lim ? b20 : (VEC)0.0f; b21 = laneIdx < lim ? b21 : (VEC)0.0f;
                b22 = laneIdx < lim ? b22 : (VEC)0.0f;
            }
            ab += gv;
            a00 += gv * b00; a01 += gv * b01; a02 += gv * b02;
            a10 += gv * b10; a11 += gv * b11; a12 += gv * b12;
            a20 += gv * b20; a21 += gv * b21; a22 += gv * b22;
        }
    }
    __local float* s = scratch + lid * 10;
    s[0] = VSUM(a00); s[1] = VSUM(a01); s[2] = VSUM(a02);
    s[3] = VSUM(a10); s[4] = VSUM(a11); s[5] = VSUM(a12);
    s[6] = VSUM(a20); s[7] = VSUM(a21); s[8] = VSUM(a22);
    s[9] = VSUM(ab);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int k = lid; k < 10; k += L) {
        if (k == 9 && !(withBias && i == 0)) continue;
        float t = 0.0f;
        for (int j = 0; j < L; ++j) t += scratch[j * 10 + k];
        const size_t row = k < 9 ? (size_t)z * 9 + k : (size_t)OC * IC * 9 + o;
        partial[row * chunks + chunk] = t;
    }
}

// Filter gradient, pass 1, "tiled" (the GPU device class's choice). A work-group
// handles R output rows of one image for one input channel i and OB output
// channels: it stages input rows y0 .. y0+R+1 of channel i in local memory once
// (instead of once per output channel from global memory), then its L work-items
// stride over x, accumulating the nine taps (and the bias sum when i == 0) per
// output channel, and reduce them in local memory, one output channel at a time.
// Writes the same partial layout as the other filter kernels with
// chunks = N*ceil(OH/R), chunk = n*ceil(OH/R) + row block.
// global = (L, chunks, IC*ceil(OC/OB)), local = (L, 1, 1),
// tile = (R+2)*W floats, scratch = L*10 floats. The backend picks R so that the
// tile and scratch fit in half the device's local memory (at most 16 rows, or
// CYTOCL_FILTER_TILE_ROWS).
#ifndef OB
#define OB 4
#endif
__kernel void conv3x3_filter_tiled(__global const float* in, __global const float* gout,
                                   __global float* partial, __local float* tile, __local float* scratch,
                                   int N, int IC, int H, int W, int OC, int R,
                                   int gRow, int gPlane, int gOff, int withBias, int pOff)
{
    partial += pOff;
    const int lid = get_local_id(0), L = get_local_size(0);
    const int chunk = get_group_id(1), zb = get_group_id(2);
    const int OH = H - 2, OW = W - 2;
    const int cpi = (OH + R - 1) / R, chunks = N * cpi;
    const int nob = (OC + OB - 1) / OB;
    const int i = zb / nob, o0 = (zb % nob) * OB;
    const int n = chunk / cpi, y0 = (chunk % cpi) * R, y1 = min(OH, y0 + R);
    const int rows = y1 - y0;
    // Stage input rows y0 .. y1+1 of (n, i).
    const __global float* src = in + (((size_t)n * IC + i) * H + y0) * W;
    for (int e = lid; e < (rows + 2) * W; e += L) tile[e] = src[e];
    barrier(CLK_LOCAL_MEM_FENCE);
    float acc[OB][10];
    for (int ob = 0; ob < OB; ++ob)
        for (int k = 0; k < 10; ++k) acc[ob][k] = 0.0f;
    for (int yy = 0; yy < rows; ++yy) {
        for (int x = lid; x < OW; x += L) {
            const __local float* t = tile + yy * W + x;
            const float t00 = t[0], t01 = t[1], t02 = t[2];
            const float t10 = t[W], t11 = t[W + 1], t12 = t[W + 2];
            const float t20 = t[2 * W], t21 = t[2 * W + 1], t22 = t[2 * W + 2];
            for (int ob = 0; ob < OB; ++ob) {
                const int o = min(o0 + ob, OC - 1);
                const float gv = gout[gOff + ((size_t)n * OC + o) * gPlane + (size_t)(y0 + yy) * gRow + x];
                acc[ob][0] += gv * t00; acc[ob][1] += gv * t01; acc[ob][2] += gv * t02;
                acc[ob][3] += gv * t10; acc[ob][4] += gv * t11; acc[ob][5] += gv * t12;
                acc[ob][6] += gv * t20; acc[ob][7] += gv * t21; acc[ob][8] += gv * t22;
                acc[ob][9] += gv;
            }
        }
    }
    for (int ob = 0; ob < OB; ++ob) {
        const int o = o0 + ob;
        for (int k = 0; k < 10; ++k) scratch[lid * 10 + k] = acc[ob][k];
        barrier(CLK_LOCAL_MEM_FENCE);
        if (o < OC) {
            for (int k = lid; k < 10; k += L) {
                if (k == 9 && !(withBias && i == 0)) continue;
                float t = 0.0f;
                for (int j = 0; j < L; ++j) t += scratch[j * 10 + k];
                const size_t row = k < 9 ? ((size_t)o * IC + i) * 9 + k : (size_t)OC * IC * 9 + o;
                partial[row * chunks + chunk] = t;
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}
