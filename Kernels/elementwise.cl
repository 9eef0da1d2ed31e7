// CytoCL: element-wise ops on float buffers (fill and copy of uint8 buffers use
// clEnqueueFillBuffer / clEnqueueCopyBuffer). Each work-item handles 8
// consecutive elements with vector loads and stores (scalar for the partial
// block at the end). global = (ceil(count/8)) rounded up to whole work-groups;
// every kernel guards.

__kernel void relu_fwd(__global const float* in, __global float* out, int count)
{
    const int i = get_global_id(0) * 8;
    if (i >= count) return;
    if (i + 8 <= count) {
        vstore8(fmax(vload8(0, in + i), (float8)0.0f), 0, out + i);
    } else {
        for (int j = i; j < count; ++j) out[j] = fmax(in[j], 0.0f);
    }
}

// grad[i] = activation[i] > 0 ? grad[i] : 0, in place.
__kernel void relu_bwd(__global const float* act, __global float* grad, int count)
{
    const int i = get_global_id(0) * 8;
    if (i >= count) return;
    if (i + 8 <= count) {
        const float8 a = vload8(0, act + i), g = vload8(0, grad + i);
        vstore8(select((float8)0.0f, g, a > (float8)0.0f), 0, grad + i);
    } else {
        for (int j = i; j < count; ++j) grad[j] = act[j] > 0.0f ? grad[j] : 0.0f;
    }
}

__kernel void fill(__global float* dst, float value, int count)
{
    int i = get_global_id(0) * 8;
    if (i >= count) return;
    if (i + 8 <= count) {
        vstore8((float8)value, 0, dst + i);
    } else {
        for (; i < count; ++i) dst[i] = value;
    }
}

__kernel void copy(__global const float* src, __global float* dst, int count)
{
    const int i = get_global_id(0) * 8;
    if (i >= count) return;
    if (i + 8 <= count) {
        vstore8(vload8(0, src + i), 0, dst + i);
    } else {
        for (int j = i; j < count; ++j) dst[j] = src[j];
    }
}
