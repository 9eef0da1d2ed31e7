#!/usr/bin/env python3
"""The paper's network in PyTorch (CPU), timed like `cytocl bench`: prints
`torch,SIZE,BATCH,train_images_per_s,inference_images_per_s` lines.
Exits 3 when torch is not installed."""
import argparse, statistics, sys, time
try:
    import torch
    from torch import nn
except ImportError:
    sys.exit(3)

def network(size, classes=2):
    layers, c, h = [], 3, size
    for f in (4, 8, 8, 8, 16, 16):
        layers += [nn.Conv2d(c, f, 3), nn.ReLU(), nn.MaxPool2d(2)]
        c, h = f, (h - 2) // 2
    layers += [nn.Flatten(), nn.Linear(c * h * h, 32), nn.ReLU(), nn.Linear(32, classes)]
    return nn.Sequential(*layers)

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
    torch.manual_seed(1)
    for size in map(int, a.sizes.split(",")):
        for batch in map(int, a.batches.split(",")):
            net = network(size)
            opt = torch.optim.RMSprop(net.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
            x = torch.rand(batch, 3, size, size); y = torch.randint(0, 2, (batch,))
            loss_fn = nn.CrossEntropyLoss()
            def train():
                opt.zero_grad(); loss_fn(net(x), y).backward(); opt.step()
            def infer():
                with torch.no_grad(): torch.softmax(net(x), 1)
            print(f"torch,{size},{batch},{rate(train, batch, a.seconds):.1f},{rate(infer, batch, a.seconds):.1f}", flush=True)

main()
