// CytoCL: dense layers as a tiled GEMM with local memory.
//
// C[m][n] = sum_k A(m,k) * B(k,n) (+ bias[n]) (ReLU), with strided operands
// A(m,k) = A[m*sam + k*sak] and B(k,n) = B[k*sbk + n*sbn], so forward
// (X W^T, the `gemm` kernel), weight gradient (G^T X) and input gradient (G W)
// (both in `dense_backward`) share one tile routine. C is row-major [M][N].
// TS is set by the backend (-DTS): 16, or 8 on devices with fewer than 256
// work-items per group. The output layer of a training step does not come here
// (loss.cl's dense_xent_step).

#ifndef TS
#define TS 16
#endif

// One TS x TS tile of C for the work-group at tile (gx, gy). Optional epilogues:
// rowSum[m] = sum_k A(m,k) (the bias gradient beside the weight gradient: the
// work-items of column 0 add up the A tile they already load), and a ReLU
// mask: C[m][n] = 0 where mask[m*N + n] <= 0 (ReLU backward fused in).
// Every work-item of the group calls it (it holds barriers).
void gemm_tile(__global const float* A, __global const float* B, __global const float* bias,
               __global float* C, int M, int N, int K,
               int sam, int sak, int sbk, int sbn, int useBias, int relu,
               __global float* rowSum, int useRowSum, __global const float* mask, int useMask,
               __local float (*As)[TS + 1], __local float (*Bs)[TS + 1], int gx, int gy)
{
    const int tx = get_local_id(0), ty = get_local_id(1);
    const int n = gx * TS + tx;
    const int m = gy * TS + ty;
    float acc = 0.0f, rs = 0.0f;
    for (int k0 = 0; k0 < K; k0 += TS) {
        // As[ty][tx] = A(m, k0+tx); Bs[ty][tx] = B(k0+ty, n)
        const int ka = k0 + tx, kb = k0 + ty;
        As[ty][tx] = (m < M && ka < K) ? A[(size_t)m * sam + (size_t)ka * sak] : 0.0f;
        Bs[ty][tx] = (kb < K && n < N) ? B[(size_t)kb * sbk + (size_t)n * sbn] : 0.0f;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int k = 0; k < TS; ++k) acc += As[ty][k] * Bs[k][tx];
        if (useRowSum && n == 0) for (int k = 0; k < TS; ++k) rs += As[ty][k];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (m < M && n < N) {
        if (useBias) acc += bias[n];
        if (relu) acc = fmax(acc, 0.0f);
        if (useMask && !(mask[(size_t)m * N + n] > 0.0f)) acc = 0.0f;
        C[(size_t)m * N + n] = acc;
        if (useRowSum && n == 0) rowSum[m] = rs;
    }
}

// global = (roundup(N,TS), roundup(M,TS)), local = (TS, TS).
__kernel void gemm(__global const float* A, __global const float* B, __global const float* bias,
                   __global float* C, int M, int N, int K,
                   int sam, int sak, int sbk, int sbn, int useBias, int relu)
{
    __local float As[TS][TS + 1];
    __local float Bs[TS][TS + 1];
    gemm_tile(A, B, bias, C, M, N, K, sam, sak, sbk, sbn, useBias, relu, C, 0, A, 0,
              As, Bs, get_group_id(0), get_group_id(1));
}

// A dense layer's whole backward pass in one launch: work-groups with
// get_group_id(2) == 0 compute gradWeight = G^T X with gradBias as its row sums,
// those with 1 compute gradInput = G W (masked by X > 0 when maskInput, i.e. the
// input is a ReLU output). G [B][O], X [B][I], W [O][I].
// global = (roundup(I,TS), roundup(max(O,B),TS), hasInput ? 2 : 1), local = (TS, TS, 1).
__kernel void dense_backward(__global const float* G, __global const float* X, __global const float* W,
                             __global float* gradW, __global float* gradB, __global float* gradX,
                             int batch, int I, int O, int maskInput)
{
    __local float As[TS][TS + 1];
    __local float Bs[TS][TS + 1];
    const int gx = get_group_id(0), gy = get_group_id(1);
    if (get_group_id(2) == 0) {
        if (gy * TS >= O) return;            // whole group outside this product
        gemm_tile(G, X, G, gradW, O, I, batch, 1, O, I, 1, 0, 0, gradB, 1, X, 0, As, Bs, gx, gy);
    } else {
        if (gy * TS >= batch) return;
        gemm_tile(G, W, G, gradX, batch, I, O, O, 1, I, 1, 0, 0, gradX, 0, X, maskInput, As, Bs, gx, gy);
    }
}
