#!/usr/bin/env python3
"""The paper's network in PyTorch (CPU), timed like `cytocl bench`: prints
`torch-cl|torch-nchw,SIZE,BATCH,train_images_per_s,inference_images_per_s,bare,NOTE`
lines, one set per memory format (channels_last and NCHW). Training is one
RMSprop step (lr 0.001, alpha 0.9) on cross-entropy over the 2-way output;
inference is a no-grad forward with softmax. Exits 3 when torch is not importable."""
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
    for _ in range(2):
        step()
    rates = []
    for _ in range(3):
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            step()
            n += 1
        rates.append(n * batch / (time.perf_counter() - start))
    return statistics.median(rates)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="257,400")
    ap.add_argument("--batches", default="5,32")
    ap.add_argument("--seconds", type=float, default=1.5)
    ap.add_argument("--layouts", default="channels_last,nchw")
    a = ap.parse_args()
    torch.manual_seed(1)
    note = f"torch {torch.__version__} {torch.get_num_threads()} threads"
    for layout in a.layouts.split(","):
        fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
        tag = "torch-cl" if layout == "channels_last" else "torch-nchw"
        for size in map(int, a.sizes.split(",")):
            for batch in map(int, a.batches.split(",")):
                net = network(size).to(memory_format=fmt)
                opt = torch.optim.RMSprop(net.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
                x = torch.rand(batch, 3, size, size).to(memory_format=fmt)
                y = torch.randint(0, 2, (batch,))
                loss_fn = nn.CrossEntropyLoss()

                def train():
                    opt.zero_grad()
                    loss_fn(net(x), y).backward()
                    opt.step()

                def infer():
                    with torch.no_grad():
                        torch.softmax(net(x), 1)

                print(f"{tag},{size},{batch},{rate(train, batch, a.seconds):.1f},"
                      f"{rate(infer, batch, a.seconds):.1f},bare,{note}", flush=True)


main()
