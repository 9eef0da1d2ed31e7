#!/usr/bin/env python3
"""The paper's network in Keras 3 / TensorFlow (CPU), timed like `cytocl bench`:
prints `keras,SIZE,BATCH,train_images_per_s,inference_images_per_s,bare,NOTE`
lines. Training is `train_on_batch` with RMSprop (lr 0.001, rho 0.9) and categorical
cross-entropy on the 2-way softmax, as the paper's script; inference is
`predict_on_batch`. Exits 3 when keras/tensorflow are not importable."""
import argparse, os, statistics, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
try:
    import numpy as np
    import keras
    from keras import layers
    import tensorflow as tf
except ImportError:
    sys.exit(3)


def network(size, classes=2):
    model = keras.Sequential([keras.Input((size, size, 3))])
    for f in (4, 8, 8, 8, 16, 16):
        model.add(layers.Conv2D(f, 3, activation="relu"))
        model.add(layers.MaxPooling2D(2))
    model.add(layers.Flatten())
    model.add(layers.Dense(32, activation="relu"))
    model.add(layers.Dense(classes, activation="softmax"))
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-3, rho=0.9), loss="categorical_crossentropy")
    return model


def rate(step, batch, seconds):
    for _ in range(2): step()
    rates = []
    for _ in range(3):
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            step(); n += 1
        rates.append(n * batch / (time.perf_counter() - start))
    return statistics.median(rates)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="257,400"); ap.add_argument("--batches", default="5,32")
    ap.add_argument("--seconds", type=float, default=1.5)
    a = ap.parse_args()
    keras.utils.set_random_seed(1)
    note = f"keras {keras.__version__} tensorflow {tf.__version__}"
    rng = np.random.default_rng(1)
    for size in map(int, a.sizes.split(",")):
        for batch in map(int, a.batches.split(",")):
            model = network(size)
            x = rng.random((batch, size, size, 3), dtype=np.float32)
            y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, batch)]
            train = lambda: model.train_on_batch(x, y)
            infer = lambda: model.predict_on_batch(x)
            print(f"keras,{size},{batch},{rate(train, batch, a.seconds):.1f},{rate(infer, batch, a.seconds):.1f},bare,{note}",
                  flush=True)


main()
