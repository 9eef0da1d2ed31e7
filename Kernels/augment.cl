// CytoCL: batch gather and training augmentation on the device.
//
// out[i] (NCHW float, /255) = augment(images[indices[i]] (NHWC uint8), params[i]).
// The arithmetic reproduces AugmentTransform.sourceCoordinate and
// AugmentTransform.sample (CytoCore/Augment.swift) operation by operation;
// contraction into FMA is disabled so the CPU and the device round identically.
#pragma OPENCL FP_CONTRACT OFF

static int clamp_index(float v, int size)
{
    if (v <= 0.0f) return 0;
    const int i = (int)v;
    return i >= size ? size - 1 : i;
}

// params[i] = (cos theta, sin theta, flipH, flipV). transform == 0: plain copy.
// One work-item per output row of one image. global = (H, batch).
__kernel void gather_augment(__global const uchar* images, __global const int* indices,
                             __global const float4* params, __global float* out,
                             int batch, int H, int W, int C, int transform)
{
    const int row = get_global_id(0), i = get_global_id(1);
    if (row >= H || i >= batch) return;
    const __global uchar* img = images + (size_t)indices[i] * H * W * C;
    const float scale = 1.0f / 255.0f;
    if (!transform) {
        for (int col = 0; col < W; ++col) {
            __global float* dst = out + (size_t)i * C * H * W + (size_t)row * W + col;
            for (int ch = 0; ch < C; ++ch)
                dst[(size_t)ch * H * W] = (float)img[((size_t)row * W + col) * C + ch] * scale;
        }
        return;
    }
    const float4 t = params[i];
    const float cosT = t.x, sinT = t.y;
    for (int col = 0; col < W; ++col) {
        __global float* dst = out + (size_t)i * C * H * W + (size_t)row * W + col;
        const float r = (float)(t.w != 0.0f ? H - 1 - row : row);
        const float c = (float)(t.z != 0.0f ? W - 1 - col : col);
        const float cy = (float)(H - 1) * 0.5f;
        const float cx = (float)(W - 1) * 0.5f;
        const float dy = r - cy;
        const float dx = c - cx;
        const float sr = (cosT * dy - sinT * dx) + cy;
        const float sc = (sinT * dy + cosT * dx) + cx;
        const float fr = floor(sr), fc = floor(sc);
        const float ar = sr - fr, ac = sc - fc;
        const int r0 = clamp_index(fr, H), r1 = clamp_index(fr + 1.0f, H);
        const int c0 = clamp_index(fc, W), c1 = clamp_index(fc + 1.0f, W);
        for (int ch = 0; ch < C; ++ch) {
            const float p00 = (float)img[((size_t)r0 * W + c0) * C + ch];
            const float p01 = (float)img[((size_t)r0 * W + c1) * C + ch];
            const float p10 = (float)img[((size_t)r1 * W + c0) * C + ch];
            const float p11 = (float)img[((size_t)r1 * W + c1) * C + ch];
            const float top = p00 + ac * (p01 - p00);
            const float bottom = p10 + ac * (p11 - p10);
            dst[(size_t)ch * H * W] = (top + ar * (bottom - top)) * scale;
        }
    }
}
