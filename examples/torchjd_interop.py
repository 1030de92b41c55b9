"""paretomtl's solvers inside a TorchJD training loop: as Aggregators and as Weightings.

Run: .venv/bin/python examples/torchjd_interop.py [--steps 200] [--quick]

Needs TorchJD >= 0.18 (``pip install torchjd``); without it the script says so and
exits.

A TorchJD user changes one object: ``paretomtl.adapters.torchjd.aggregator(name)``
where TorchJD's aggregator was, with ``mtl_backward`` and ``jac_to_grad`` unchanged,
and ``paretomtl.adapters.torchjd.weighting(name)`` where a TorchJD ``Weighting`` was,
with the ``autogram`` engine (the Gramian without the Jacobian):

    aggregator = ptjd.aggregator("upgrad")          # instead of torchjd's UPGrad()
    mtl_backward(losses, features=z)
    weights = jac_to_grad(model.trunk.parameters(), aggregator)

    weighting = ptjd.weighting("mgda")              # instead of MGDAWeighting()
    gramian = engine.compute_gramian(losses)        # engine = Engine(model.trunk, ...)
    losses.backward(weighting(gramian))

The script trains the same three-task model four ways for the same number of steps
(TorchJD's UPGrad, ours through ``jac_to_grad``, ours with
``optimize_gramian_computation=True``, and our MGDA through the autogram engine) and
prints each one's final losses, the weights of its last step and its time per step.
TorchJD's UPGrad adds a ridge of 1e-4 of the trace to the Gramian before its QP; ours
solves the problem as stated, so the two runs' weights differ a little.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch


def make_data(n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g)
    s = torch.sin(2.0 * x[:, 0]) + 0.5 * x[:, 1]
    return x, [s, -s + 0.3 * torch.cos(x[:, 2]), torch.tanh(x[:, 3] * x[:, 4])]


class Model(torch.nn.Module):
    def __init__(self, tasks=3):
        super().__init__()
        torch.manual_seed(0)
        self.trunk = torch.nn.Sequential(
            torch.nn.Linear(10, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8), torch.nn.ReLU()
        )
        self.heads = torch.nn.ModuleList(torch.nn.Linear(8, 1) for _ in range(tasks))

    def losses(self, x, ys):
        z = self.trunk(x)
        heads = zip(self.heads, ys, strict=True)
        return [((h(z).squeeze(-1) - y) ** 2).mean() for h, y in heads], z


def train(step_fn, model, x, ys, steps, batch=64):
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    weights = None
    tic = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (batch,), generator=g)
        opt.zero_grad()
        weights = step_fn(model, x[idx], [y[idx] for y in ys])
        opt.step()
    per_step = (time.perf_counter() - tic) / steps
    with torch.no_grad():
        final, _ = model.losses(x, ys)
    return np.array([float(v) for v in final]), np.asarray(weights, dtype=np.float64), per_step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="20 steps (CI)")
    args = parser.parse_args(argv)
    try:
        from torchjd.aggregation import UPGrad
        from torchjd.autogram import Engine
        from torchjd.autojac import jac_to_grad, mtl_backward

        from paretomtl.adapters import torchjd as ptjd
    except ImportError as exc:
        print(f"TorchJD is not installed ({exc}): pip install 'torchjd>=0.18'", file=sys.stderr)
        return 0
    steps = 20 if args.quick else args.steps
    x, ys = make_data()

    def autojac_step(aggregator, **options):
        def step(model, xb, yb):
            losses, z = model.losses(xb, yb)
            mtl_backward(losses, features=z)
            return jac_to_grad(model.trunk.parameters(), aggregator, **options).detach()

        return step

    def autogram_step(weighting):
        engines = {}

        def step(model, xb, yb):
            if id(model) not in engines:  # the engine hooks the trunk once
                engines[id(model)] = Engine(model.trunk, batch_dim=None)
            losses, _ = model.losses(xb, yb)
            stacked = torch.stack(losses)
            weights = weighting(engines[id(model)].compute_gramian(stacked))
            stacked.backward(weights)  # the trunk gets sum_i w_i g_i (heads: w_i times theirs)
            return weights.detach()

        return step

    runs = {
        "torchjd UPGrad()": autojac_step(UPGrad()),
        "paretomtl upgrad, jac_to_grad": autojac_step(ptjd.aggregator("upgrad")),
        "paretomtl upgrad, Gramian only": autojac_step(
            ptjd.aggregator("upgrad"), optimize_gramian_computation=True
        ),
        "paretomtl mgda, autogram": autogram_step(ptjd.weighting("mgda")),
    }
    print(f"{steps} steps of Adam, batch 64, three tasks; final loss per task on all data")
    for name, step in runs.items():
        final, weights, per_step = train(step, Model(), x, ys, steps)
        print(
            f"{name:<32} losses {np.array2string(final, precision=4)}  last weights "
            f"{np.array2string(weights, precision=3)}  {1e3 * per_step:6.2f} ms/step"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
