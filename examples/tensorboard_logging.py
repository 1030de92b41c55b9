"""A paretomtl training loop logging its weights and gradient conflicts to TensorBoard.

Run: .venv/bin/python examples/tensorboard_logging.py [--method pcgrad] [--steps 300]
     [--out results/tensorboard]     then: tensorboard --logdir results/tensorboard

Needs the ``tensorboard`` package (``pip install tensorboard``) for
``torch.utils.tensorboard.SummaryWriter``; without it the script says so and exits.

Three regression tasks share an MLP trunk whose last layer is narrow (8 units), so
they compete for it and their gradients there often conflict. Every step,
``Aggregator(method, track_conflicts=True).backward`` returns a ``StepInfo``;
``paretomtl.adapters.logging.flatten`` turns it into named scalars, which go to
TensorBoard one ``add_scalar`` each:

    for tag, value in flatten(info, names=TASKS).items():
        writer.add_scalar(tag, value, step)

giving ``mtl/weight/<task>``, ``mtl/loss/<task>``, ``mtl/grad_norm/<task>``,
``mtl/cosine/<a>-<b>`` and the moving statistics ``mtl/conflicts/mean_cosine/<a>-<b>``,
``.../cosine_std/...`` and ``.../conflict_frequency/...`` (the fraction of recent steps
in which the two tasks' gradients conflicted), plus the solver's ``converged`` and
``kkt_residual``. The same dict works for any logger (``wandb.log``, MLflow's
``log_metrics``, Lightning's ``log_dict``). At the end the script reads its event file
back and prints the last value of a few tags.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from paretomtl.adapters.logging import flatten
from paretomtl.adapters.torch import Aggregator

TASKS = ["up", "down", "side"]


def make_data(n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    s = torch.sin(2.0 * x[:, 0]) + 0.5 * x[:, 1]
    ys = [s, -s + 0.3 * torch.cos(x[:, 2]), torch.tanh(x[:, 3] * x[:, 4])]
    return x, ys


class Model(torch.nn.Module):
    def __init__(self, tasks=3):
        super().__init__()
        torch.manual_seed(0)
        self.trunk = torch.nn.Sequential(
            torch.nn.Linear(8, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8), torch.nn.ReLU()
        )
        self.heads = torch.nn.ModuleList(torch.nn.Linear(8, 1) for _ in range(tasks))

    def forward(self, x):
        z = self.trunk(x)
        return [h(z).squeeze(-1) for h in self.heads]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="pcgrad")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", default="results/tensorboard")
    args = parser.parse_args(argv)
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # torch raises this when the tensorboard package is missing
        print(f"TensorBoard is not installed ({exc}); pip install tensorboard", file=sys.stderr)
        return 0

    x, ys = make_data()
    model = Model()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    agg = Aggregator(args.method, seed=0, track_conflicts=True)
    log_dir = Path(args.out) / args.method
    g = torch.Generator().manual_seed(1)
    with SummaryWriter(log_dir=str(log_dir)) as writer:
        for step in range(args.steps):
            idx = torch.randint(0, x.shape[0], (64,), generator=g)
            losses = [((p - y[idx]) ** 2).mean() for p, y in zip(model(x[idx]), ys, strict=True)]
            opt.zero_grad()
            info = agg.backward(losses, model.trunk.parameters())
            opt.step()
            for tag, value in flatten(info, names=TASKS).items():
                writer.add_scalar(tag, value, step)
    print(f"{args.steps} steps of {args.method}; events in {log_dir}")
    print(f"view them: tensorboard --logdir {args.out}")

    # Read the events back (tensorboard's own reader): the last logged values.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    tags = events.Tags()["scalars"]
    print(f"{len(tags)} scalar tags, e.g.:")
    shown = [t for t in tags if t.startswith(("mtl/weight/", "mtl/conflicts/conflict_frequency/"))]
    for tag in shown:
        last = events.Scalars(tag)[-1]
        print(f"  {tag:<44} step {last.step:>4}: {last.value:+.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
