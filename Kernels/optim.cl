// CytoCL: optimizer updates, one parameter per work-item (see OptimizerUpdate).

// Keras SGD: v = momentum*v - lr*g; p += v (p -= lr*g when momentum is 0).
__kernel void sgd(__global float* p, __global const float* g, __global float* v,
                  float lr, float momentum, int count)
{
    const int i = get_global_id(0);
    if (i >= count) return;
    if (momentum == 0.0f) {
        p[i] = p[i] - lr * g[i];
    } else {
        const float nv = momentum * v[i] - lr * g[i];
        v[i] = nv;
        p[i] = p[i] + nv;
    }
}

// Keras 3 RMSprop: v = rho*v + (1-rho)*g^2; p -= lr*g/sqrt(v+eps).
__kernel void rmsprop(__global float* p, __global const float* g, __global float* v,
                      float lr, float rho, float eps, int count)
{
    const int i = get_global_id(0);
    if (i >= count) return;
    const float gi = g[i];
    const float nv = rho * v[i] + (1.0f - rho) * gi * gi;
    v[i] = nv;
    p[i] = p[i] - lr * gi / sqrt(nv + eps);
}

// Keras 2.0.8 RMSprop (the paper's): v = rho*v + (1-rho)*g^2; p -= lr*g/(sqrt(v)+eps).
__kernel void rmsprop_keras2(__global float* p, __global const float* g, __global float* v,
                             float lr, float rho, float eps, int count)
{
    const int i = get_global_id(0);
    if (i >= count) return;
    const float gi = g[i];
    const float nv = rho * v[i] + (1.0f - rho) * gi * gi;
    v[i] = nv;
    p[i] = p[i] - lr * gi / (sqrt(nv) + eps);
}

// Adam (Keras 2.0.8 and 3 differ only in eps), bias correction folded into step:
// m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2; p -= step*m/(sqrt(v)+eps).
__kernel void adam(__global float* p, __global const float* g, __global float* m, __global float* v,
                   float step, float b1, float b2, float eps, int count)
{
    const int i = get_global_id(0);
    if (i >= count) return;
    const float gi = g[i];
    const float nm = b1 * m[i] + (1.0f - b1) * gi;
    const float nv = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = nm;
    v[i] = nv;
    p[i] = p[i] - step * nm / (sqrt(nv) + eps);
}
