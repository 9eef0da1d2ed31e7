"""Reads the CSV `cytocl predict` prints: path,predicted,prob_<class>..."""
import csv


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    if header[:2] != ["path", "predicted"] or not all(h.startswith("prob_") for h in header[2:]):
        raise SystemExit(f"{path}: not a cytocl predict CSV (header {header})")
    classes = [h[len("prob_"):] for h in header[2:]]
    paths = [r[0] for r in body]
    probabilities = [[float(v) for v in r[2:]] for r in body]
    return classes, paths, probabilities
