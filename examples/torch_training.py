"""The synthetic multi-task regression of the GradNorm paper, trained four ways.

Run: .venv/bin/python examples/torch_training.py [--steps 1500] [--out results/torch_training]

Chen et al. (ICML 2018, section 4) regress T tasks f_i(x) = sigma_i tanh((B + eps_i) x),
x in R^250, outputs in R^100, B ~ N(0, 10) shared and eps_i ~ N(0, 3.5) per task;
the scales sigma_i make the losses differ by orders of magnitude. The model is a
shared trunk of 4 ReLU layers of 100 units and a linear head per task. We train it
with equal weights (plain sum of losses), GradNorm (alpha = 0.12, as the paper's
synthetic example), MGDA and PCGrad, for two tasks with sigma = (1, 100) and for ten
tasks with sigmas spread over 1..100, and print each task's final loss ratio
L_i(T) / L_i(0). A PNG plots the weights each method gave the tasks over time. It
uses the GPU when there is one and runs on the CPU in a couple of minutes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from paretomtl.adapters.torch import Aggregator


def make_data(sigmas, n=4000, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    d_in, d_out = 250, 100
    B = torch.randn(d_out, d_in, generator=g) * np.sqrt(10.0)
    x = torch.randn(n, d_in, generator=g)
    # Normalise inputs so tanh is not saturated everywhere (the paper leaves this open).
    x = x / np.sqrt(d_in)
    ys = []
    for s in sigmas:
        eps = torch.randn(d_out, d_in, generator=g) * np.sqrt(3.5)
        ys.append(s * torch.tanh(x @ (B + eps).T))
    return x.to(device), [y.to(device) for y in ys]


class Model(torch.nn.Module):
    def __init__(self, tasks, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        layers = []
        width = 250
        for _ in range(4):
            layers += [torch.nn.Linear(width, 100), torch.nn.ReLU()]
            width = 100
        self.trunk = torch.nn.Sequential(*layers)
        self.heads = torch.nn.ModuleList(torch.nn.Linear(100, 100) for _ in range(tasks))

    def forward(self, x):
        z = self.trunk(x)
        return [h(z) for h in self.heads]


def train(method, sigmas, steps, device, batch=100, seed=0, lr=1e-2):
    x, ys = make_data(sigmas, device=device)
    model = Model(len(sigmas), seed=seed).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    shared = list(model.trunk.parameters())
    last_shared_layer = list(model.trunk[6].parameters())
    agg = None
    if method == "gradnorm":
        agg = Aggregator("gradnorm", options={"alpha": 0.12, "lr": 0.025})
    elif method in ("mgda", "pcgrad"):
        agg = Aggregator(method, seed=seed)
    g = torch.Generator(device="cpu").manual_seed(seed)
    initial, weights_log = None, []
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (batch,), generator=g).to(device)
        preds = model(x[idx])
        losses = [torch.mean((p - y[idx]) ** 2) for p, y in zip(preds, ys, strict=True)]
        opt.zero_grad()
        if agg is None:
            sum(losses).backward()
            w = np.ones(len(losses))
        elif method == "gradnorm":
            w = agg.backward(losses, shared, layer=last_shared_layer).weights
        else:
            w = agg.backward(losses, shared).weights
        opt.step()
        weights_log.append(w)
    with torch.no_grad():
        final = [float(torch.mean((p - y) ** 2)) for p, y in zip(model(x), ys, strict=True)]
        init_model = Model(len(sigmas), seed=seed).to(device)
        initial = [float(torch.mean((p - y) ** 2)) for p, y in zip(init_model(x), ys, strict=True)]
    return np.array(final) / np.array(initial), np.array(weights_log)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--out", default="results/torch_training")
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    setups = {
        "T=2, sigma=(1, 100)": [1.0, 100.0],
        "T=10, sigma=1..100": list(np.geomspace(1, 100, 10)),
    }
    methods = ("equal", "gradnorm", "mgda", "pcgrad")
    logs = {}
    print(f"device: {device}, {args.steps} steps of Adam (lr 1e-2), batch 100")
    for setup, sigmas in setups.items():
        print(f"\n== {setup}: final loss ratio L_i(T) / L_i(0) per task")
        for method in methods:
            tic = time.perf_counter()
            ratios, weights = train(method, sigmas, args.steps, device)
            logs[(setup, method)] = weights
            spread = ratios.max() / ratios.min()
            print(
                f"{method:>9} ({time.perf_counter() - tic:5.1f} s): "
                f"{np.array2string(ratios, precision=3)}  max/min {spread:.2f}"
            )
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot (pip install 'paretomtl[plot]')")
        return
    fig, axes = plt.subplots(len(setups), len(methods), figsize=(16, 7), squeeze=False)
    for r, setup in enumerate(setups):
        for c, method in enumerate(methods):
            ax = axes[r, c]
            w = logs[(setup, method)]
            # Weights per task normalised to sum to the task count, for comparison.
            w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-300) * w.shape[1]
            ax.plot(w, lw=1)
            ax.set_yscale("log")
            ax.set_title(f"{method}, {setup}", fontsize=9)
            ax.set_xlabel("step")
        axes[r, 0].set_ylabel("task weight (sum = T)")
    fig.tight_layout()
    path = out / "weights.png"
    fig.savefig(path, dpi=100)
    print(f"\nplot: {path}")


if __name__ == "__main__":
    main()
