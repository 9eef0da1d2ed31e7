#!/usr/bin/env python3
"""Writes Tests/Fixtures/tsne/sklearn-small.json: small point sets (20, 35 and 50
points; well-separated Gaussian clusters, and a set with duplicate pairs) with
scikit-learn's t-SNE results on them, for CytoExplainTests.TSNEReferenceTests.

Per set: the points, labels, the perplexity used (min(30, (n - 1) / 3)), and over five
random initialisations scikit-learn's minimum trustworthiness (k = 5), minimum 1-NN
label agreement and maximum absolute coordinate. The Swift test needs no Python.

    pip install scikit-learn numpy && python3 python/tsne_reference.py
"""
import json
import os

import numpy as np
import sklearn
from sklearn.manifold import TSNE, trustworthiness


def blobs(n, clusters, dims, rng):
    labels = np.arange(n) % clusters
    x = rng.normal(size=(n, dims))
    for c in range(clusters):
        x[labels == c, c % dims] += 10.0
    return x, labels


def nn_agreement(e, labels):
    d = ((e[:, None, :] - e[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return float((labels[d.argmin(1)] == labels).mean())


def main():
    rng = np.random.default_rng(19)
    sets = []
    for name, n, k in [("blobs20", 20, 2), ("blobs35", 35, 3), ("blobs50", 50, 4)]:
        x, y = blobs(n, k, 10, rng)
        sets.append((name, x, y))
    pairs = np.repeat(rng.random((17, 8)), 2, axis=0)
    sets.append(("duplicate-pairs35", np.vstack([pairs, np.zeros((1, 8))]), np.arange(35) % 2))
    out = {"sklearn": sklearn.__version__, "k": 5, "sets": []}
    for name, x, y in sets:
        n = len(x)
        perp = min(30.0, (n - 1) / 3)
        tw, agree, extent = [], [], []
        for seed in range(5):
            e = TSNE(perplexity=perp, init="random", random_state=seed, method="exact").fit_transform(x)
            tw.append(trustworthiness(x, e, n_neighbors=5))
            agree.append(nn_agreement(e, y))
            extent.append(float(np.abs(e).max()))
        out["sets"].append({
            "name": name, "points": np.round(x, 5).tolist(), "labels": y.tolist(), "perplexity": perp,
            "minTrustworthiness": min(tw), "minAgreement": min(agree), "maxExtent": max(extent),
        })
    path = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "tsne", "sklearn-small.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
