// CytoCL: element-wise ops. global = (count) rounded up; every kernel guards.

__kernel void relu_fwd(__global const float* in, __global float* out, int count)
{
    const int i = get_global_id(0);
    if (i < count) out[i] = fmax(in[i], 0.0f);
}

// grad[i] = activation[i] > 0 ? grad[i] : 0, in place.
__kernel void relu_bwd(__global const float* act, __global float* grad, int count)
{
    const int i = get_global_id(0);
    if (i < count) grad[i] = act[i] > 0.0f ? grad[i] : 0.0f;
}

__kernel void fill(__global float* dst, float value, int count)
{
    const int i = get_global_id(0);
    if (i < count) dst[i] = value;
}

__kernel void copy(__global const float* src, __global float* dst, int count)
{
    const int i = get_global_id(0);
    if (i < count) dst[i] = src[i];
}
