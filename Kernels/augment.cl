// CytoCL: batch gather and training augmentation on the device.
//
// out[i] (NCHW float, /255) = augment(images[indices[i]] (NHWC uint8), params[i]).
// The arithmetic reproduces AugmentTransform.sourceCoordinate and
// AugmentTransform.sample (CytoCore/Augment.swift) operation by operation;
// contraction into FMA is disabled so the CPU and the device round identically.
//
// One work-item per run of GW consecutive output pixels of one row: the plain
// copy of 3-channel images reads the 3*GW interleaved bytes with vector loads and
// de-interleaves them in registers (no byte gathers), then writes GW floats per
// channel plane with vector stores. global = (ceil(W/GW), H, batch).
#pragma OPENCL FP_CONTRACT OFF

#define GW 8

static int clamp_index(float v, int size)
{
    if (v <= 0.0f) return 0;
    const int i = (int)v;
    return i >= size ? size - 1 : i;
}

// params[i] = (cos theta, sin theta, flipH, flipV). transform == 0: plain copy.
__kernel void gather_augment(__global const uchar* images, __global const int* indices,
                             __global const float4* params, __global float* out,
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
    const float4 t = params[i];
    const float cosT = t.x, sinT = t.y;
    const float cy = (float)(H - 1) * 0.5f;
    const float cx = (float)(W - 1) * 0.5f;
    const float r = (float)(t.w != 0.0f ? H - 1 - row : row);
    const float dy = r - cy;
    for (int k = 0; k < cols; ++k) {
        const int col = col0 + k;
        const float c = (float)(t.z != 0.0f ? W - 1 - col : col);
        const float dx = c - cx;
        const float sr = (cosT * dy - sinT * dx) + cy;
        const float sc = (sinT * dy + cosT * dx) + cx;
        const float fr = floor(sr), fc = floor(sc);
        const float ar = sr - fr, ac = sc - fc;
        const int r0 = clamp_index(fr, H), r1 = clamp_index(fr + 1.0f, H);
        const int c0 = clamp_index(fc, W), c1 = clamp_index(fc + 1.0f, W);
        const __global uchar* q00 = img + ((size_t)r0 * W + c0) * C;
        const __global uchar* q01 = img + ((size_t)r0 * W + c1) * C;
        const __global uchar* q10 = img + ((size_t)r1 * W + c0) * C;
        const __global uchar* q11 = img + ((size_t)r1 * W + c1) * C;
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
