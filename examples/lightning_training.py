"""Multi-task training in PyTorch Lightning with a paretomtl method and its logged statistics.

Run: .venv/bin/python examples/lightning_training.py [--method mgda] [--epochs 5]
     [--out results/lightning]           (CI: --quick, one short epoch)

Needs ``lightning`` (or ``pytorch-lightning``): ``pip install lightning``; without it
the script says so and exits. Logs go to TensorBoard when ``tensorboard`` is installed
(``tensorboard --logdir results/lightning``), else to a CSV file.

Lightning's automatic optimisation backpropagates the one loss ``training_step``
returns; to combine K task gradients the module optimises manually and calls
``paretomtl.adapters.lightning.manual_backward`` where it would call
``self.manual_backward(loss)``:

    self.automatic_optimization = False                  # in __init__
    ...
    opt = self.optimizers()
    opt.zero_grad()
    info = manual_backward(self, losses, self.trunk.parameters(), self.aggregator)
    opt.step()
    log_step(self, info, names=TASKS)                    # weights, cosines, conflicts

``manual_backward`` runs Lightning's ``on_before_backward`` / ``on_after_backward``
hooks around the aggregated backward and hands the precision plugin's GradScaler to the
aggregator. Three regression tasks compete for a narrow shared layer (8 units), so
their gradients there often conflict. ``log_step`` logs ``mtl/weight/<task>``, ``mtl/loss/<task>``,
``mtl/cosine/<a>-<b>`` and, with ``track_conflicts=True``, the moving statistics
``mtl/conflicts/{mean_cosine,cosine_std,conflict_frequency}/<a>-<b>``. The aggregator's
state (a stateful method's memory, the conflict tracker) is saved in Lightning's
checkpoints through ``on_save_checkpoint`` / ``on_load_checkpoint``. At the end the
script prints the last logged values.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

from paretomtl.adapters.torch import Aggregator

TASKS = ["depth", "normal", "edges"]


def lightning_module():
    """Lightning under either of its names, or None."""
    try:
        import lightning.pytorch as pl
    except ImportError:
        try:
            import pytorch_lightning as pl
        except ImportError:
            return None
    return pl


def make_data(n=1024, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g)
    s = torch.sin(2.0 * x[:, 0]) + 0.5 * x[:, 1]
    y = torch.stack([s, -s + 0.3 * torch.cos(x[:, 2]), torch.tanh(x[:, 3] * x[:, 4])], dim=1)
    return torch.utils.data.TensorDataset(x, y)


def build(pl, method):
    from paretomtl.adapters.lightning import log_step, manual_backward

    class MultiTask(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False
            self.trunk = torch.nn.Sequential(
                torch.nn.Linear(10, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8), torch.nn.ReLU()
            )
            self.heads = torch.nn.ModuleList(torch.nn.Linear(8, 1) for _ in TASKS)
            gradient_method = method not in _loss_weightings()
            self.aggregator = Aggregator(method, seed=0, track_conflicts=gradient_method)

        def training_step(self, batch, batch_idx):
            x, y = batch
            z = self.trunk(x)
            losses = [((h(z).squeeze(-1) - y[:, k]) ** 2).mean() for k, h in enumerate(self.heads)]
            opt = self.optimizers()
            opt.zero_grad()
            info = manual_backward(self, losses, self.trunk.parameters(), self.aggregator)
            opt.step()
            log_step(self, info, names=TASKS, on_step=True, on_epoch=False)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=3e-3)

        def on_save_checkpoint(self, checkpoint):
            checkpoint["paretomtl"] = self.aggregator.state_dict()

        def on_load_checkpoint(self, checkpoint):
            self.aggregator.load_state_dict(checkpoint["paretomtl"])

    return MultiTask()


def _loss_weightings():
    from paretomtl import weighting

    return set(weighting.available())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="mgda")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", default="results/lightning")
    parser.add_argument("--quick", action="store_true", help="one epoch of 8 batches (CI)")
    args = parser.parse_args(argv)
    pl = lightning_module()
    if pl is None:
        print("PyTorch Lightning is not installed: pip install lightning", file=sys.stderr)
        return 0
    torch.manual_seed(0)
    module = build(pl, args.method)
    try:
        import tensorboard  # noqa: F401

        logger = pl.loggers.TensorBoardLogger(args.out, name=args.method)
    except ImportError:
        logger = pl.loggers.CSVLogger(args.out, name=args.method)
    trainer = pl.Trainer(
        max_epochs=1 if args.quick else args.epochs,
        limit_train_batches=8 if args.quick else None,
        accelerator="cpu",
        devices=1,
        logger=logger,
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=args.out,
    )
    loader = torch.utils.data.DataLoader(make_data(), batch_size=64, shuffle=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        trainer.fit(module, loader)
    metrics = trainer.callback_metrics
    print(f"{args.method}: {trainer.global_step} steps; logs in {Path(logger.log_dir)}")
    for key in sorted(metrics):
        if key.startswith(("mtl/weight/", "mtl/loss/", "mtl/conflicts/conflict_frequency/")):
            print(f"  {key:<46} {float(metrics[key]):+.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
