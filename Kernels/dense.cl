// CytoCL: dense layers as a tiled GEMM with local memory.
//
// C[m][n] = sum_k A(m,k) * B(k,n) (+ bias[n]) (ReLU), with strided operands
// A(m,k) = A[m*sam + k*sak] and B(k,n) = B[k*sbk + n*sbn], so forward
// (X W^T), weight gradient (G^T X) and input gradient (G W) share one kernel.
// C is row-major [M][N]. global = (roundup(N,TS), roundup(M,TS)), local = (TS, TS).

#ifndef TS
#define TS 16
#endif

__kernel void gemm(__global const float* A, __global const float* B, __global const float* bias,
                   __global float* C, int M, int N, int K,
                   int sam, int sak, int sbk, int sbn, int useBias, int relu)
{
    __local float As[TS][TS + 1];
    __local float Bs[TS][TS + 1];
    const int tx = get_local_id(0), ty = get_local_id(1);
    const int n = get_group_id(0) * TS + tx;
    const int m = get_group_id(1) * TS + ty;
    float acc = 0.0f;
    for (int k0 = 0; k0 < K; k0 += TS) {
        // As[ty][tx] = A(m, k0+tx); Bs[ty][tx] = B(k0+ty, n)
        const int ka = k0 + tx, kb = k0 + ty;
        As[ty][tx] = (m < M && ka < K) ? A[(size_t)m * sam + (size_t)ka * sak] : 0.0f;
        Bs[ty][tx] = (kb < K && n < N) ? B[(size_t)kb * sbk + (size_t)n * sbn] : 0.0f;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int k = 0; k < TS; ++k) acc += As[ty][k] * Bs[k][tx];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (m < M && n < N) {
        if (useBias) acc += bias[n];
        if (relu) acc = fmax(acc, 0.0f);
        C[(size_t)m * N + n] = acc;
    }
}
