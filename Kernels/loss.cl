// CytoCL: softmax, categorical cross-entropy and metrics.
// Batches are small (the logits of one batch), so one work-item does a whole
// batch in order: the result is deterministic and needs no atomics.

// probabilities = softmax(logits); loss_i = (log(sum exp(l - max)) + max) - l[label]
// (as CPUBackend computes it); gradLogits = (p - onehot) / batch when
// hasGrad; metrics[0] += sum of loss_i, metrics[1] += correct (argmax, first
// maximum), metrics[2] += batch. global = (1).
__kernel void softmax_xent(__global const float* logits, __global const float* labels,
                           __global float* prob, __global float* grad, __global float* metrics,
                           int batch, int classes, int hasGrad)
{
    if (get_global_id(0) != 0) return;
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
