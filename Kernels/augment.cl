// CytoCL: batch gather and training augmentation on the device.
//
// out[i] (NCHW float, /255) = augment(images[indices[i]] (NHWC uint8), params[i]).
// params[i] is the affine map of AugmentMap (CytoCore/Augment.swift): the source
// coordinate of output pixel (row, col) is (s0 + row*s1) + col*s2 for the row and
// (s3 + row*s4) + col*s5 for the column; s6 = 1 samples nearest-neighbour (Keras
// 2.0.8, scipy order 0: floor(s + 0.5)), 0 bilinear; edges are replicated. The
// arithmetic reproduces AugmentTransform.sample and CytoCPU's AugmentKernels
// operation by operation; contraction into FMA is disabled so the CPU and the
// device round identically.
//
// One work-item per run of GW consecutive output pixels of one row: the plain
// copy of 3-channel images reads the 3*GW interleaved bytes with vector loads and
// de-interleaves them in registers (no byte gathers), then writes GW floats per
// channel plane with vector stores. The augmented path computes each pixel's
// source index once for all channels, collects GW pixels per channel in private
// arrays and stores them as vectors. global = (ceil(W/GW), H, batch).
#pragma OPENCL FP_CONTRACT OFF

#define GW 8

// An integer-valued coordinate clamped to [0, maxV] as a float, then converted.
static int clamp_index(float v, float maxV)
{
    return (int)fmin(fmax(v, 0.0f), maxV);
}

// transform == 0: plain copy (params unused).
__kernel void gather_augment(__global const uchar* images, __global const int* indices,
                             __global const float8* params, __global float* out,
                             int batch, int H, int W, int C, int transform)
{
    const int xv = get_global_id(0), row = get_global_id(1), i = get_global_id(2);
    const int col0 = xv * GW;
    if (col0 >= W || row >= H || i >= batch) return;
    const int cols = min(GW, W - col0);
    const size_t HW = (size_t)H * W;
    const __global uchar* img = images + (size_t)indices[i] * HW * C;
    __global float* dst = out + (size_t)i * C * HW + (size_t)row * W + col0;
    const float scale = 1.0f / 255.0f;
    if (!transform) {
        const __global uchar* src = img + ((size_t)row * W + col0) * C;
        if (C == 3 && cols == GW) {
            const float16 a = convert_float16(vload16(0, src));
            const float8 b = convert_float8(vload8(0, src + 16));
            const float8 r = (float8)(a.s0, a.s3, a.s6, a.s9, a.sc, a.sf, b.s2, b.s5);
            const float8 g = (float8)(a.s1, a.s4, a.s7, a.sa, a.sd, b.s0, b.s3, b.s6);
            const float8 bl = (float8)(a.s2, a.s5, a.s8, a.sb, a.se, b.s1, b.s4, b.s7);
            vstore8(r * scale, 0, dst);
            vstore8(g * scale, 0, dst + HW);
            vstore8(bl * scale, 0, dst + 2 * HW);
        } else if (C == 1 && cols == GW) {
            vstore8(convert_float8(vload8(0, src)) * scale, 0, dst);
        } else {
            for (int c = 0; c < cols; ++c)
                for (int ch = 0; ch < C; ++ch)
                    dst[(size_t)ch * HW + c] = (float)src[c * C + ch] * scale;
        }
        return;
    }
    const float8 t = params[i];
    const float fy = (float)row;
    const float r0 = t.s0 + fy * t.s1, c0 = t.s3 + fy * t.s4;
    const float maxR = (float)(H - 1), maxC = (float)(W - 1);
    if (t.s6 != 0.0f) {
        if (C == 3 && cols == GW) {
            float pr[GW], pg[GW], pb[GW];
            for (int k = 0; k < GW; ++k) {
                const float fx = (float)(col0 + k);
                const float sr = r0 + fx * t.s2, sc = c0 + fx * t.s5;
                const int ir = clamp_index(floor(sr + 0.5f), maxR), ic = clamp_index(floor(sc + 0.5f), maxC);
                const __global uchar* q = img + ((size_t)ir * W + ic) * 3;
                pr[k] = (float)q[0]; pg[k] = (float)q[1]; pb[k] = (float)q[2];
            }
            vstore8(vload8(0, pr) * scale, 0, dst);
            vstore8(vload8(0, pg) * scale, 0, dst + HW);
            vstore8(vload8(0, pb) * scale, 0, dst + 2 * HW);
            return;
        }
        for (int k = 0; k < cols; ++k) {
            const float fx = (float)(col0 + k);
            const float sr = r0 + fx * t.s2, sc = c0 + fx * t.s5;
            const int ir = clamp_index(floor(sr + 0.5f), maxR), ic = clamp_index(floor(sc + 0.5f), maxC);
            const __global uchar* q = img + ((size_t)ir * W + ic) * C;
            for (int ch = 0; ch < C; ++ch) dst[(size_t)ch * HW + k] = (float)q[ch] * scale;
        }
        return;
    }
    for (int k = 0; k < cols; ++k) {
        const float fx = (float)(col0 + k);
        const float sr = r0 + fx * t.s2, sc = c0 + fx * t.s5;
        const float fr = floor(sr), fc = floor(sc);
        const float ar = sr - fr, ac = sc - fc;
        const int ra = clamp_index(fr, maxR), rb = clamp_index(fr + 1.0f, maxR);
        const int ca = clamp_index(fc, maxC), cb = clamp_index(fc + 1.0f, maxC);
        const __global uchar* q00 = img + ((size_t)ra * W + ca) * C;
        const __global uchar* q01 = img + ((size_t)ra * W + cb) * C;
        const __global uchar* q10 = img + ((size_t)rb * W + ca) * C;
        const __global uchar* q11 = img + ((size_t)rb * W + cb) * C;
        for (int ch = 0; ch < C; ++ch) {
            const float p00 = (float)q00[ch];
            const float p01 = (float)q01[ch];
            const float p10 = (float)q10[ch];
            const float p11 = (float)q11[ch];
            const float top = p00 + ac * (p01 - p00);
            const float bottom = p10 + ac * (p11 - p10);
            dst[(size_t)ch * HW + k] = (top + ar * (bottom - top)) * scale;
        }
    }
}
