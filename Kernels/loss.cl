// CytoCL: softmax, categorical cross-entropy and metrics.
// Batches are small (the logits of one batch), so the loss and metrics of a
// whole batch are summed by one work-item in order: the result is deterministic
// and needs no atomics. softmax_xent runs on one work-item, dense_xent_step on
// one work-group, softmax_rows (inference) on a work-item per row.

// probabilities = softmax(logits); loss_i = (log(sum exp(l - max)) + max) - l[label]
// (as CPUBackend computes it); gradLogits = (p - onehot) / batch when
// hasGrad; metrics[0] += sum of loss_i, metrics[1] += correct (argmax, first
// maximum), metrics[2] += batch. global = (1).
void xent_rows(__global const float* logits, __global const float* labels,
               __global float* prob, __global float* grad, __global float* metrics,
               int batch, int classes, int hasGrad)
{
    float lossSum = 0.0f, correct = 0.0f;
    const float scale = 1.0f / (float)batch;
    for (int b = 0; b < batch; ++b) {
        const __global float* l = logits + (size_t)b * classes;
        __global float* p = prob + (size_t)b * classes;
        float mx = l[0];
        int arg = 0;
        for (int c = 1; c < classes; ++c) if (l[c] > mx) { mx = l[c]; arg = c; }
        float sum = 0.0f;
        for (int c = 0; c < classes; ++c) { const float e = exp(l[c] - mx); p[c] = e; sum += e; }
        const float inv = 1.0f / sum;
        for (int c = 0; c < classes; ++c) p[c] *= inv;
        const int label = (int)labels[b];
        lossSum += (log(sum) + mx) - l[label];
        if (arg == label) correct += 1.0f;
        if (hasGrad) {
            __global float* g = grad + (size_t)b * classes;
            for (int c = 0; c < classes; ++c) g[c] = (p[c] - (c == label ? 1.0f : 0.0f)) * scale;
        }
    }
    metrics[0] += lossSum;
    metrics[1] += correct;
    metrics[2] += (float)batch;
}

__kernel void softmax_xent(__global const float* logits, __global const float* labels,
                           __global float* prob, __global float* grad, __global float* metrics,
                           int batch, int classes, int hasGrad)
{
    if (get_global_id(0) != 0) return;
    xent_rows(logits, labels, prob, grad, metrics, batch, classes, hasGrad);
}

// The output layer of a training step in one launch (one work-group):
// logits = X W^T + b, then softmax_xent's loss, metrics and logit gradient
// (by work-item 0, in softmax_xent's order), then the layer's backward pass:
// gradW = GL^T X, gradB = column sums of GL, gradX = GL W, zeroed where X <= 0
// when maskInput (X is a ReLU output). X [B][K], W [C][K], GL = gradLogits [B][C].
// Global-memory barriers order the phases within the work-group.
// global = local = (L).
__kernel void dense_xent_step(__global const float* X, __global const float* W, __global const float* bias,
                              __global float* logits, __global const float* labels, __global float* prob,
                              __global float* gradLogits, __global float* metrics,
                              __global float* gradW, __global float* gradB, __global float* gradX,
                              int batch, int K, int classes, int maskInput)
{
    const int lid = get_local_id(0), L = get_local_size(0);
    for (int t = lid; t < batch * classes; t += L) {
        const int b = t / classes, c = t - b * classes;
        const __global float* x = X + (size_t)b * K;
        const __global float* w = W + (size_t)c * K;
        float acc = 0.0f;
        for (int k = 0; k < K; ++k) acc += x[k] * w[k];
        logits[t] = acc + bias[c];
    }
    barrier(CLK_GLOBAL_MEM_FENCE);
    if (lid == 0) xent_rows(logits, labels, prob, gradLogits, metrics, batch, classes, 1);
    barrier(CLK_GLOBAL_MEM_FENCE);
    for (int t = lid; t < classes * K; t += L) {
        const int c = t / K, k = t - c * K;
        float acc = 0.0f;
        for (int b = 0; b < batch; ++b) acc += gradLogits[(size_t)b * classes + c] * X[(size_t)b * K + k];
        gradW[t] = acc;
    }
    for (int c = lid; c < classes; c += L) {
        float acc = 0.0f;
        for (int b = 0; b < batch; ++b) acc += gradLogits[(size_t)b * classes + c];
        gradB[c] = acc;
    }
    for (int t = lid; t < batch * K; t += L) {
        const int b = t / K, k = t - b * K;
        float acc = 0.0f;
        for (int c = 0; c < classes; ++c) acc += gradLogits[(size_t)b * classes + c] * W[(size_t)c * K + k];
        gradX[t] = maskInput && !(X[t] > 0.0f) ? 0.0f : acc;
    }
}

// Softmax only. global = (batch).
__kernel void softmax_rows(__global const float* logits, __global float* prob, int batch, int classes)
{
    const int b = get_global_id(0);
    if (b >= batch) return;
    const __global float* l = logits + (size_t)b * classes;
    __global float* p = prob + (size_t)b * classes;
    float mx = l[0];
    for (int c = 1; c < classes; ++c) mx = fmax(mx, l[c]);
    float sum = 0.0f;
    for (int c = 0; c < classes; ++c) { const float e = exp(l[c] - mx); p[c] = e; sum += e; }
    for (int c = 0; c < classes; ++c) p[c] /= sum;
}
