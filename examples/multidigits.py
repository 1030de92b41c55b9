"""MultiDigits: every method of the registry, and TorchJD's and LibMTL's, on one real task.

Run: .venv/bin/python examples/multidigits.py [--quick] [--seeds 3] [--methods a,b,c]
     [--layout side|overlay] [--out results/multidigits]
(or ``bash scripts/example.sh multidigits`` from a fresh clone).

What it reproduces. Sener & Koltun (NeurIPS 2018, section 7, the MultiMNIST table)
and PCGrad (Yu et al., NeurIPS 2020, on the same code) train one shared network to
read two overlaid MNIST digits, one task per digit, against one network per task.
MultiMNIST needs a download; this benchmark builds the same kind of problem from the
8 x 8 digits scikit-learn ships (1797 images, no download) and adds a third task of
another kind, so that loss scales and task types differ:

- The 1797 images are split 70/30 into train and test images first (by the seed),
  then pairs are drawn within each split: 10 000 train and 2 000 test pairs, so no
  test image is ever seen in training. Default layout ``side``: the two digits side
  by side, an 8 x 16 image. We chose it over ``overlay`` (MultiMNIST's layout: the
  right digit shifted by (2, 4) pixels onto the left one, the pixel-wise maximum)
  because at 8 x 8 and 17 grey levels an overlap destroys much of both digits, so
  the label would often not be readable from the image; side by side every label
  is, the tasks still share every layer, and the test can check that each half is
  its source image. ``--layout overlay`` runs the other.
- Tasks: the left digit (10 classes, cross-entropy), the right digit (10 classes,
  cross-entropy), and their sum as a regression (squared error of the sum
  standardised by its prior mean 9 and standard deviation 4.06, so that the blind
  guess costs 1 against log 10 = 2.3 for a digit; reported as the MAE in digit units).
- Network: two 3 x 3 conv layers (8 and 16 channels, ReLU, 2 x 2 max-pooling) and a
  linear layer of 48 units, shared; a linear head per task. Adam, lr 5e-3, batch 64,
  500 steps (3.2 epochs), the same initialisation, minibatch order and randomness
  per seed for every row; test metrics after the last step (no early stopping).
- Rows: every gradient method and loss weighting of the registry through
  ``paretomtl.adapters.torch.Aggregator`` (defaults, or the neutral choice where a
  method needs one: the ``options`` column), TorchJD 0.18's and LibMTL 1.1.5's
  implementations of the methods they share with us (``torchjd:<our name>``,
  ``libmtl:<their class>``; skipped with a note where not installed), and the
  single-task baseline: the same network trained on one task's loss alone, one
  per task.
- Reported per row (mean +- std over 3 seeds): test accuracy of each digit, MAE
  of the sum, Delta_m as LibMTL computes it (``LibMTL/utils.py``,
  ``count_improvement``: the mean over tasks of ``(-1)^w (B - M) / B``, w = 1 where
  higher is better, B the single-task value of the same seed, times 100: positive
  is better than one network per task), the mean rank over the three metrics, and
  the CPU time per training step relative to ``equal`` (one backward of the summed
  loss) in the same run. ``runs.csv`` (every row and seed), ``table.csv``
  (aggregated, sorted by Delta_m) and ``accuracies.png`` (the two digit accuracies)
  go under ``--out``.

What the papers reported (MultiMNIST, test accuracy of the left / right digit, %;
Sener & Koltun 2018, MultiMNIST table; copied from a summary of the paper, not
checked against its PDF here): single task 97.23 / 95.90, uniform scaling (the sum)
96.46 / 94.99, Kendall et al. (uncertainty) 96.47 / 95.29, GradNorm 96.27 / 94.84,
MGDA-UB 97.26 / 95.90: only MGDA-UB matched one network per task. PCGrad's paper
reports MultiMNIST results too (its numbers could not be checked here, so they are
not quoted). These are other data, another network, their tuned settings and (for
MGDA-UB) the gradients at the shared representation: no number here is comparable
to theirs; what can be compared is the pattern.

What we measured (full run, 3 seeds: 24 min of wall time on a 2-core CPU shared
with other jobs, load 3.6 to 5.2; 836 s of CPU time, so about 15 min idle):

- One network per task: 96.78 / 97.28 % on the digits, MAE 1.21 on the sum.
- No multi-task row beats it on Delta_m. The best: LibMTL's UW -0.56 +- 2.12, FAMO
  -1.25 +- 1.31, STCH -1.56 +- 3.10, GLS -1.76, the summed gradients -1.97, the summed
  loss (``equal``) -2.34 +- 0.81. With standard deviations of 1 to 3 points over the
  seeds, and 0.36 points between ``sum`` and ``equal`` (the same step, computed two
  ways), the top 25 or so rows cannot be told apart.
- On the digits almost every row is within one point of the single-task networks:
  this CNN has room for both digits, where on MultiMNIST uniform scaling lost 0.8 and
  0.9 points. Delta_m is decided by the third task, the sum.
- MGDA (and ``pareto-step``, the same weights): 96.15 / 96.55 %, MAE 1.72, Delta_m
  -14.4 +- 0.2. We do not reproduce Sener & Koltun's finding that MGDA matches one
  network per task while the sum does not: here MGDA is within 0.7 points on the
  digits, like the sum, and falls behind on the sum task. The reason is measurable:
  the sum task's gradient at the trunk is about 5 times longer than a digit's, and
  the minimum-norm weights give it 0.07 (against 0.45 for each digit; mean over steps
  200-500 of seed 0). The methods that balance gradient lengths or projections
  (IMTL-G, Nash-MTL, FairGrad, gradient normalisation, CR-MOGM, MoDo, SDMGrad) end
  between -11 and -18 for the same reason.
- GradNorm is the lowest of the paper's four rows on both digits here too (95.58 /
  96.32 %; paper 96.27 / 94.84), and uncertainty weighting is below the sum (95.87 /
  96.57 % against 96.32 / 97.05 %), where the paper had the two about level.
- The implementations agree where they must: ``equal``, ``constant`` and LibMTL's EW
  are bit for bit the same run, as are ``dwa`` and LibMTL's DWA; PCD, ExcessMTL,
  Krum, DualProj, PCGrad, UPGrad, CAGrad, Mean, TrimmedMean and SDMGrad are within
  about one point of TorchJD's. The gaps of 3 to 8 points (Nash-MTL -18.0 against
  TorchJD's -10.2, ConFIG, Random, FairGrad, IMTL-G, MoDo, CR-MOGM) are of the size
  of those rows' standard deviations over the seeds (up to 8 and 9 points). Our
  uncertainty weighting (-5.4) and LibMTL's UW (-0.6) differ in formulation: UW
  weights every task 1 / (2 sigma^2) from log sigma^2 = -0.5, ours takes c = 1 for
  the classification tasks (Kendall et al.'s eq. 10) and starts at log sigma^2 = 0.
- Rows that fail, by design as far as we can tell, not by a bug: PBI (theta 5,
  reference 0) collapses to 33 / 32 % (Delta_m -138): the gradient of its penalty is
  5 times a unit vector that changes side as the losses cross the preference ray, so
  the losses are pushed up and down in turn; Krum with ``n_selected = 1`` follows one
  task's gradient (right digit 89 %); PCD puts task 0 first by construction (right
  digit 87 %); MoCo and DB-MTL, which step along moving averages of the gradients
  (LibMTL's defaults), trail after 500 steps (86 to 91 %).
- Cost, CPU time per step relative to ``equal``: about 1 for the loss weightings,
  1.5 to 2 for the gradient methods (three backward passes instead of one), 9 for
  TorchJD's Nash-MTL (a cvxpy solve per step).

The interface other scripts use (``examples/momentum_pcgrad.py`` imports it):

- ``make_data(seed, quick=False, layout="side") -> Data``: the train and test
  tensors, fixed by ``seed``;
- ``train(method, seed, data, *, quick=False, options=None) -> dict`` with
  ``acc_left``, ``acc_right``, ``sum_mae``, ``sum_rmse``, ``seconds_per_step``,
  ``cpu_seconds_per_step``, ``projections`` (mean per step for PCGrad and momentum
  PCGrad; GradVac's adjustments; None for other methods), ``steps``, ``note``;
- ``delta_m(metrics, baseline)`` and ``aggregate(runs)`` for the table.
"""

from __future__ import annotations

import importlib
import random
import sys
import time
import types
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from paretomtl import solvers, weighting
from paretomtl.adapters.torch import Aggregator

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _gallery

NAME = "multidigits"
TASKS = ("left", "right", "sum")
TASK_TYPES = ("classification", "classification", "regression")
# The metrics of the table; True where higher is better (LibMTL's "weight" 1).
HIGHER_IS_BETTER = {"acc_left": True, "acc_right": True, "sum_mae": False}
METRIC_OF_TASK = {"left": "acc_left", "right": "acc_right", "sum": "sum_mae"}
REFERENCE = "equal"  # CPU time per step is given relative to this row's (one backward)


# -- data ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Size:
    """The sizes of a run: data, training, network."""

    train_pairs: int
    test_pairs: int
    steps: int
    batch: int
    lr: float
    channels: tuple[int, int]
    hidden: int


FULL = Size(
    train_pairs=10_000, test_pairs=2_000, steps=500, batch=64, lr=5e-3, channels=(8, 16), hidden=48
)
QUICK = Size(
    train_pairs=256, test_pairs=128, steps=6, batch=32, lr=5e-3, channels=(4, 8), hidden=16
)
TEST_FRACTION = 0.3  # of the 1797 source images, held out before any pair is made


@dataclass(frozen=True)
class Data:
    """Train and test pairs of digits, fixed by ``seed`` (see :func:`make_data`).

    Attributes:
        x_train, x_test: (N, 1, H, W) float32 images in [0, 1].
        y_train, y_test: (N, 2) int64: the left and the right digit.
        sources_train, sources_test: (N, 2) indices into ``load_digits().images`` of
            the left and the right image of each pair.
        train_images, test_images: the source indices each side may draw from
            (disjoint: the split is made before the pairs).
        prior_losses: (3,) the loss of the best input-blind guess per task, on the
            training pairs (entropy of the digit frequencies; variance of the
            standardised sum).
        layout: ``"side"`` or ``"overlay"``.
        seed: the seed the data came from.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    sources_train: np.ndarray
    sources_test: np.ndarray
    train_images: np.ndarray
    test_images: np.ndarray
    prior_losses: tuple[float, float, float]
    layout: str
    seed: int


OVERLAY_SHIFT = (2, 4)  # the right digit's offset (rows, columns) in the overlaid layout


def compose(left: np.ndarray, right: np.ndarray, layout: str = "side") -> np.ndarray:
    """Images (N, 8, 8) of the left and right digits into one (N, H, W) image each.

    ``"side"``: side by side, (8, 16). ``"overlay"``: as MultiMNIST, the right digit
    shifted down and right by :data:`OVERLAY_SHIFT` on a (10, 12) canvas, the pixel-wise
    maximum where they overlap."""
    n = left.shape[0]
    if layout == "side":
        return np.concatenate([left, right], axis=2)
    if layout != "overlay":
        raise ValueError(f"layout must be 'side' or 'overlay'; got {layout!r}")
    dr, dc = OVERLAY_SHIFT
    canvas = np.zeros((n, 8 + dr, 8 + dc), dtype=left.dtype)
    canvas[:, :8, :8] = left
    canvas[:, dr:, dc:] = np.maximum(canvas[:, dr:, dc:], right)
    return canvas


def make_data(seed: int, quick: bool = False, layout: str = "side") -> Data:
    """The MultiDigits pairs of ``seed``: the 1797 images of scikit-learn's digits are
    split into train and test images first (30 % test), then pairs are drawn within each
    split, each side uniformly with replacement: 10 000 train and 2 000 test pairs
    (``quick``: 256 and 128). Pixels are scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    size = QUICK if quick else FULL
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    n_test = round(TEST_FRACTION * len(images))
    test_images, train_images = np.sort(order[:n_test]), np.sort(order[n_test:])

    def pairs(pool: np.ndarray, n: int):
        sources = rng.choice(pool, size=(n, 2), replace=True)
        x = compose(images[sources[:, 0]], images[sources[:, 1]], layout)
        return torch.from_numpy(x[:, None]), torch.from_numpy(labels[sources]), sources

    x_train, y_train, s_train = pairs(train_images, size.train_pairs)
    x_test, y_test, s_test = pairs(test_images, size.test_pairs)
    sums = y_train.sum(dim=1).numpy()
    priors = (
        weighting.prior_loss_classification(y_train[:, 0].numpy(), num_classes=10),
        weighting.prior_loss_classification(y_train[:, 1].numpy(), num_classes=10),
        weighting.prior_loss_regression((sums - SUM_MEAN) / SUM_SCALE),
    )
    return Data(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        sources_train=s_train,
        sources_test=s_test,
        train_images=train_images,
        test_images=test_images,
        prior_losses=priors,
        layout=layout,
        seed=seed,
    )


# -- the network --------------------------------------------------------------------
class Net(torch.nn.Module):
    """A small shared CNN (two conv layers, one linear layer) and one head per task:
    10 logits for each digit, one number for the sum."""

    def __init__(self, image_shape: tuple[int, int], size: Size) -> None:
        super().__init__()
        c1, c2 = size.channels
        h, w = image_shape
        self.trunk = torch.nn.Sequential(
            torch.nn.Conv2d(1, c1, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(c1, c2, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Flatten(),
            torch.nn.Linear(c2 * (h // 4) * (w // 4), size.hidden),
            torch.nn.ReLU(),
        )
        self.heads = torch.nn.ModuleDict(
            {
                "left": torch.nn.Linear(size.hidden, 10),
                "right": torch.nn.Linear(size.hidden, 10),
                "sum": torch.nn.Linear(size.hidden, 1),
            }
        )

    @property
    def last_shared(self) -> list[torch.Tensor]:
        """The parameters of the last shared layer (GradNorm's W)."""
        return list(self.trunk[7].parameters())

    def predict(self, z: torch.Tensor, reps: dict | None = None) -> list[torch.Tensor]:
        """The three heads on the shared features ``z`` (or on per-task copies)."""
        reps = reps or {}
        return [self.heads[t](reps.get(t, z)) for t in TASKS]


# The sum head predicts the standardised sum (s - 9) / SUM_SCALE: 9 and SUM_SCALE (the
# mean and standard deviation of the sum of two uniform digits) put its squared error of
# the input-blind guess at 1, next to log 10 = 2.3 for each digit's cross-entropy.
SUM_MEAN, SUM_SCALE = 9.0, float(np.sqrt(2 * 99 / 12))


def predicted_sum(output: torch.Tensor) -> torch.Tensor:
    """The sum in digit units from the head's output."""
    return SUM_MEAN + SUM_SCALE * output.squeeze(-1)


def task_losses(outputs: Sequence[torch.Tensor], y: torch.Tensor) -> list[torch.Tensor]:
    """Cross-entropy of each digit, squared error of the standardised sum."""
    target = (y.sum(dim=1).to(outputs[2].dtype) - SUM_MEAN) / SUM_SCALE
    return [
        F.cross_entropy(outputs[0], y[:, 0]),
        F.cross_entropy(outputs[1], y[:, 1]),
        F.mse_loss(outputs[2].squeeze(-1), target),
    ]


@torch.no_grad()
def evaluate(model: Net, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Test accuracy of each digit, MAE and RMSE of the predicted sum."""
    left, right, total = model.predict(model.trunk(x))
    error = predicted_sum(total) - y.sum(dim=1).to(total.dtype)
    return {
        "acc_left": float((left.argmax(1) == y[:, 0]).float().mean()),
        "acc_right": float((right.argmax(1) == y[:, 1]).float().mean()),
        "sum_mae": float(error.abs().mean()),
        "sum_rmse": float(error.pow(2).mean().sqrt()),
    }


# -- the methods --------------------------------------------------------------------
def neutral_options(method: str, data: Data) -> tuple[dict, str]:
    """The options a registry method gets here, and the note the table shows: the
    neutral choice where the method needs one, the defaults otherwise."""
    table: dict[str, tuple[dict, str]] = {
        "uncertainty": ({"task_types": TASK_TYPES}, "task_types class., class., regr."),
        "constant": ({"weights": [1.0, 1.0, 1.0]}, "weights (1, 1, 1)"),
        "generalized-mean": ({"gamma": 0.5}, "gamma 0.5 (0: gls, 1: mean)"),
        "prior-loss": (
            {"prior_losses": list(data.prior_losses)},
            "priors " + ", ".join(f"{p:.3g}" for p in data.prior_losses),
        ),
        "pcd": ({}, "primary: task 0 (left digit)"),
        "pbi": ({}, "preference uniform, theta 5"),
        "cosmos": ({}, "preference 1/3 each, lambda 2"),
        "epo": ({}, "preference (1, 1, 1)"),
        "pareto-step": ({}, "lower bounds 0 (= MGDA)"),
        "stch": ({"warmup_epochs": 1}, "warm-up 1 epoch (default 4 > the run)"),
        "dwa": ({}, "T 2, per epoch"),
        "gradnorm": ({}, "alpha 1.5, W = last shared layer"),
        "krum": ({}, "n_selected 1, n_byzantine 0"),
        "trimmed-mean": ({}, "trim 1 (median of 3)"),
    }
    return table.get(method, ({}, ""))


def torchjd_aggregators() -> dict[str, Callable[[], object]] | None:
    """TorchJD 0.18's aggregators of the methods we share, by our name, built with our
    defaults where the two differ (None without TorchJD)."""
    try:
        from torchjd import aggregation as jd
    except ImportError:
        return None
    gramian = jd.GramianWeightedAggregator
    return {
        "aligned-mtl": jd.AlignedMTL,
        "cagrad": lambda: jd.CAGrad(c=0.4),
        "config": jd.ConFIG,
        "cr-mogm": lambda: gramian(jd.CRMOGMWeighting(jd.MGDAWeighting())),
        "dualproj": jd.DualProj,
        "excess-mtl": lambda: jd.ExcessMTL(robust_step_size=0.01, n_warmup_steps=1),
        "fairgrad": lambda: jd.FairGrad(alpha=1.0),
        "graddrop": jd.GradDrop,
        "gradvac": lambda: jd.GradVac(beta=0.01),
        "imtl-g": jd.IMTLG,
        "krum": lambda: jd.Krum(n_byzantine=0, n_selected=1),
        "mean": jd.Mean,
        "mgda": jd.MGDA,
        "modo": lambda: gramian(jd.MoDoWeighting()),
        "nash-mtl": lambda: jd.NashMTL(n_tasks=len(TASKS)),
        "pcd": jd.PCD,
        "pcgrad": jd.PCGrad,
        "random": jd.Random,
        "sdmgrad": lambda: gramian(jd.SDMGradWeighting()),
        "sum": jd.Sum,
        "trimmed-mean": lambda: jd.TrimmedMean(trim_number=1),
        "upgrad": jd.UPGrad,
    }


TORCHJD_NOTES = {
    "cagrad": "c 0.4 (ours; TorchJD needs one)",
    "excess-mtl": "step 0.01, warm-up 1 (ours)",
    "fairgrad": "alpha 1 (ours)",
    "gradvac": "beta 0.01 (ours; TorchJD 0.5)",
    "cr-mogm": "on MGDAWeighting",
}

# LibMTL 1.1.5's weightings: (weight_args, rep_grad, our nearest method, note).
LIBMTL = {
    "EW": ({}, False, "equal", ""),
    "GLS": ({}, False, "gls", ""),
    "MGDA": ({"mgda_gn": "none"}, False, "mgda", "mgda_gn none"),
    "PCGrad": ({}, False, "pcgrad", ""),
    "CAGrad": ({"calpha": 0.4, "rescale": 1}, False, "cagrad", "calpha 0.4 (ours), rescale 1"),
    "DWA": ({"T": 2.0}, False, "dwa", "T 2"),
    "GradNorm": ({"alpha": 1.5}, False, "gradnorm", "alpha 1.5, from epoch 1"),
    "GradVac": ({"beta": 0.01}, False, "gradvac", "beta 0.01 (ours; LibMTL 0.5)"),
    "IMTL": ({}, False, "imtl-g", "IMTL-L and IMTL-G together"),
    "RLW": ({"dist": "Normal"}, False, "rlw", "dist Normal"),
    "UW": ({}, False, "uncertainty", "LibMTL's UW (all tasks alike)"),
    "GradDrop": ({"leak": 0.0}, True, "graddrop", "rep_grad (LibMTL's only mode)"),
}


def _import_libmtl():
    """LibMTL, or None. LibMTL 1.1.5 imports ``torchvision.models.utils`` for its
    ResNets (unused here), which current torchvision lacks: stand it in while importing."""
    try:
        return importlib.import_module("LibMTL")
    except ImportError as exc:
        if "torchvision" not in str(exc):
            return None
    except RuntimeError:
        pass
    for name in [n for n in sys.modules if n == "LibMTL" or n.startswith("LibMTL.")]:
        del sys.modules[name]
    saved = {
        n: sys.modules.get(n)
        for n in ("torchvision", "torchvision.models", "torchvision.models.utils")
    }
    for name in saved:
        stand_in = types.ModuleType(name)
        stand_in.__path__ = []
        sys.modules[name] = stand_in
    sys.modules[
        "torchvision.models.utils"
    ].load_state_dict_from_url = torch.hub.load_state_dict_from_url
    try:
        return importlib.import_module("LibMTL")
    except ImportError:
        return None
    finally:
        for name, module in saved.items():
            if module is None:
                del sys.modules[name]
            else:
                sys.modules[name] = module


def available_methods() -> tuple[list[str], list[str]]:
    """Every row name this example can run (registry methods, then the peers' rows),
    and notes on peers that are missing."""
    names = list(solvers.available()) + list(weighting.available())
    missing = []
    jd = torchjd_aggregators()
    if jd is None:
        missing.append("TorchJD is not installed: its rows are skipped (pip install torchjd)")
    else:
        names += [f"torchjd:{m}" for m in jd]
    if _import_libmtl() is None:
        missing.append("LibMTL is not installed: its rows are skipped (pip install LibMTL)")
    else:
        names += [f"libmtl:{m}" for m in LIBMTL]
    return names, missing


# -- one training step, per kind of row -------------------------------------------------
class Runner:
    """Turns the K losses of a step into ``.grad``; one per row kind."""

    note = ""

    def parameters(self) -> list[torch.Tensor]:
        """Parameters the optimiser trains besides the network's."""
        return []

    def features(self, z: torch.Tensor) -> dict | None:
        """Per-task copies of the features the heads read (LibMTL's rep_grad)."""
        return None

    def step(self, losses: list[torch.Tensor], z: torch.Tensor) -> int | None:
        """Write the gradients; return the step's projections where counted."""
        raise NotImplementedError

    def end_epoch(self, mean_losses: np.ndarray) -> None:
        """Called after each pass over the training pairs."""


class SingleTask(Runner):
    def __init__(self, task: int) -> None:
        self.task = task

    def step(self, losses, z):
        losses[self.task].backward()
        return None


class Ours(Runner):
    def __init__(self, method: str, model: Net, data: Data, seed: int, options: dict | None):
        base, self.note = neutral_options(method, data)
        if options:
            base, self.note = {**base, **options}, ", ".join(f"{k} {v}" for k, v in options.items())
        self.agg = Aggregator(method, seed=seed, options=base, num_tasks=len(TASKS))
        self.shared = list(model.trunk.parameters())
        self.layer = model.last_shared
        self.epochs = callable(getattr(self.agg.method_state, "end_epoch", None))

    def parameters(self):
        return list(self.agg.parameters())

    def step(self, losses, z):
        info = self.agg.backward(losses, self.shared, layer=self.layer)
        extras = info.result.extras if info.result is not None else {}
        return extras.get("projections", extras.get("adjustments"))

    def end_epoch(self, mean_losses):
        if self.epochs:
            self.agg.end_epoch()


class TorchJD(Runner):
    def __init__(self, method: str, model: Net) -> None:
        from torchjd.autojac import jac_to_grad, mtl_backward

        self.aggregator = torchjd_aggregators()[method]()
        self.backward, self.to_grad = mtl_backward, jac_to_grad
        self.shared = list(model.trunk.parameters())
        self.note = TORCHJD_NOTES.get(method, "")

    def step(self, losses, z):
        self.backward(losses, features=z)
        self.to_grad(self.shared, self.aggregator)
        return None


class LibMTLHost(Runner):
    """A LibMTL weighting driven without LibMTL's Trainer: it is mixed into an object
    that provides what ``AbsWeighting`` reads (``task_num``, ``device``, ``rep_grad``,
    ``get_share_params``, ``zero_grad_share_params``; ``epoch`` and
    ``train_loss_buffer`` for DWA and GradNorm; ``rep``, ``rep_tasks`` with rep_grad),
    and stepped as the Trainer steps it."""

    def __init__(self, name: str, model: Net, steps: int, steps_per_epoch: int) -> None:
        libmtl = _import_libmtl()
        self.weight_args, rep_grad, _, self.note = LIBMTL[name]
        trunk = [model.trunk]  # in a list: not a submodule of the weighting
        epochs = -(-steps // steps_per_epoch)

        class Host(getattr(libmtl.weighting, name)):
            def get_share_params(self):
                return trunk[0].parameters()

            def zero_grad_share_params(self):
                # LibMTL 1.1.5 indexes .grad after this; torch >= 2 would set it to None.
                trunk[0].zero_grad(set_to_none=False)

        self.host = Host()
        self.host.task_num, self.host.task_name = len(TASKS), list(TASKS)
        self.host.device, self.host.rep_grad = torch.device("cpu"), rep_grad
        self.host.epoch, self.host.train_loss_buffer = 0, np.zeros((len(TASKS), epochs))
        self.host.rep, self.host.rep_tasks = {}, {}
        self.host.init_param()
        self.rep_grad = rep_grad

    def parameters(self):
        return list(self.host.parameters())

    def features(self, z):
        if not self.rep_grad:
            return None
        for task in TASKS:  # as LibMTL's AbsArchitecture._prepare_rep
            self.host.rep[task] = z
            self.host.rep_tasks[task] = z.detach().clone().requires_grad_(True)
        return self.host.rep_tasks

    def step(self, losses, z):
        self.host.backward(torch.stack(losses), **self.weight_args)
        return None

    def end_epoch(self, mean_losses):
        self.host.train_loss_buffer[:, self.host.epoch] = mean_losses
        self.host.epoch += 1


def make_runner(
    method: str, model: Net, data: Data, seed: int, size: Size, options: dict | None
) -> Runner:
    """The runner of a row: ``single:<task>``, ``torchjd:<ours>``, ``libmtl:<Class>``,
    or a registry name."""
    kind, _, name = method.rpartition(":")
    if options and kind:
        raise ValueError(f"options are for registry methods; {method!r} takes none")
    if kind == "single":
        return SingleTask(TASKS.index(name))
    if kind == "torchjd":
        if torchjd_aggregators() is None:
            raise ImportError("TorchJD is not installed")
        return TorchJD(name, model)
    if kind == "libmtl":
        if _import_libmtl() is None:
            raise ImportError("LibMTL is not installed")
        return LibMTLHost(name, model, size.steps, size.train_pairs // size.batch)
    if kind:
        raise ValueError(f"unknown row kind {kind!r} in {method!r}")
    return Ours(method, model, data, seed, options)


def batch_order(seed: int, n: int, batch: int, steps: int) -> Iterator[tuple[torch.Tensor, bool]]:
    """The minibatches of a run (the same for every method of a seed): shuffled
    epochs of ``n // batch`` batches; with each, whether it ends an epoch."""
    g = torch.Generator().manual_seed(seed)
    per_epoch = n // batch
    done = 0
    while done < steps:
        perm = torch.randperm(n, generator=g)
        for b in range(min(per_epoch, steps - done)):
            yield perm[b * batch : (b + 1) * batch], b == per_epoch - 1
        done += per_epoch


def train(
    method: str,
    seed: int,
    data: Data,
    *,
    quick: bool = False,
    options: dict | None = None,
) -> dict:
    """Train one network on ``data`` with ``method`` from ``seed``; its test metrics.

    Args:
        method: a registry name (``paretomtl.solvers.available()``,
            ``paretomtl.weighting.available()``), ``"torchjd:<our name>"`` (TorchJD's
            implementation), ``"libmtl:<LibMTL class>"``, or ``"single:left"``,
            ``"single:right"``, ``"single:sum"`` (a single-task baseline: the same
            network trained on that task's loss alone).
        seed: fixes the initialisation, the minibatch order and the methods' randomness
            (the same for every method).
        data: from :func:`make_data` (of any seed).
        quick: the tiny sizes of ``--quick``.
        options: a registry method's options, replacing the neutral ones of the table.

    Returns:
        A dict with ``method``, ``seed``, ``acc_left``, ``acc_right`` (test accuracy of
        each digit), ``sum_mae``, ``sum_rmse`` (of the predicted sum), ``steps``,
        ``seconds_per_step`` (the training loop's wall time per step), ``projections``
        (mean per step for methods that report them: PCGrad and momentum PCGrad's
        projections, GradVac's adjustments; else None) and ``note`` (the options).
    """
    size = QUICK if quick else FULL
    torch.manual_seed(seed)
    random.seed(seed)  # LibMTL's PCGrad and GradVac shuffle with it
    model = Net(tuple(data.x_train.shape[-2:]), size)
    runner = make_runner(method, model, data, seed, size, options)
    opt = torch.optim.Adam([*model.parameters(), *runner.parameters()], lr=size.lr)
    projections: list[int] = []
    epoch_losses: list[list[float]] = []
    tic, cpu = time.perf_counter(), time.process_time()
    for idx, last_of_epoch in batch_order(seed, len(data.x_train), size.batch, size.steps):
        z = model.trunk(data.x_train[idx])
        losses = task_losses(model.predict(z, runner.features(z)), data.y_train[idx])
        opt.zero_grad()
        count = runner.step(losses, z)
        opt.step()
        epoch_losses.append([float(loss.detach()) for loss in losses])
        if count is not None:
            projections.append(count)
        if last_of_epoch:
            runner.end_epoch(np.mean(epoch_losses, axis=0))
            epoch_losses = []
    seconds, cpu = time.perf_counter() - tic, time.process_time() - cpu
    return {
        "method": method,
        "seed": seed,
        **evaluate(model, data.x_test, data.y_test),
        "steps": size.steps,
        "seconds_per_step": seconds / size.steps,
        "cpu_seconds_per_step": cpu / size.steps,
        "projections": float(np.mean(projections)) if projections else None,
        "note": runner.note,
    }


# -- the table ----------------------------------------------------------------------
def delta_m(metrics: dict, baseline: dict) -> float:
    """The multi-task improvement over the single-task baseline, in %, as LibMTL's
    ``count_improvement`` computes it (``LibMTL/utils.py``): the mean over tasks of
    ``(-1)^w (B - M) / B``, w = 1 where higher is better, times 100. Positive means
    better than the baseline; each task here has one metric."""
    terms = [
        (-1) ** int(HIGHER_IS_BETTER[m]) * (baseline[m] - metrics[m]) / baseline[m]
        for m in HIGHER_IS_BETTER
    ]
    return 100.0 * float(np.mean(terms))


def mean_ranks(rows: Sequence[dict]) -> list[float]:
    """Each row's rank on every metric (1 = best, ties share the mean rank), averaged
    over the metrics."""
    ranks = np.zeros(len(rows))
    for m, higher in HIGHER_IS_BETTER.items():
        values = np.array([r[m] for r in rows])
        key = -values if higher else values
        order = key.argsort(kind="stable")
        rank = np.empty(len(rows))
        rank[order] = np.arange(1, len(rows) + 1)
        for v in np.unique(key):  # ties: the mean of their ranks
            rank[key == v] = rank[key == v].mean()
        ranks += rank
    return list(ranks / len(HIGHER_IS_BETTER))


def single_task_baseline(runs: Sequence[dict], seed: int) -> dict:
    """The baseline's metrics for ``seed``: each task's metric from its own network."""
    return {
        METRIC_OF_TASK[t]: next(
            r for r in runs if r["method"] == f"single:{t}" and r["seed"] == seed
        )[METRIC_OF_TASK[t]]
        for t in TASKS
    }


def summarise(method: str, mine: Sequence[dict], baselines: dict, reference: dict) -> dict:
    """The table's row of ``method`` from its runs ``mine`` (one per seed)."""
    row: dict = {"method": method, "seeds": len(mine)}
    for m in HIGHER_IS_BETTER:
        values = np.array([r[m] for r in mine])
        row[m], row[f"{m}_std"] = float(values.mean()), float(values.std())
    deltas = np.array([delta_m(r, baselines[r["seed"]]) for r in mine])
    row["delta_m"], row["delta_m_std"] = float(deltas.mean()), float(deltas.std())
    relative = [
        r["cpu_seconds_per_step"] / reference[r["seed"]]
        for r in mine
        if "cpu_seconds_per_step" in r and r["seed"] in reference
    ]
    row["time_vs_equal"] = float(np.mean(relative)) if relative else float("nan")
    counted = [r["projections"] for r in mine if r.get("projections") is not None]
    row["projections"] = float(np.mean(counted)) if counted else ""
    row["options"] = mine[0].get("note", "")
    return row


def aggregate(runs: Sequence[dict]) -> list[dict]:
    """The table: the single-task row, then one row per method sorted by Delta_m (means
    and standard deviations over the seeds; Delta_m per seed against that seed's
    single-task networks; CPU time per step relative to ``equal`` of the same seed;
    the mean rank over the three metrics among the multi-task rows)."""
    seeds = sorted({r["seed"] for r in runs})
    baselines = {s: single_task_baseline(runs, s) for s in seeds}
    reference = {r["seed"]: r["cpu_seconds_per_step"] for r in runs if r["method"] == REFERENCE}
    single = summarise(
        "single-task", [{**baselines[s], "seed": s} for s in seeds], baselines, reference
    )
    methods = dict.fromkeys(r["method"] for r in runs if not r["method"].startswith("single:"))
    rows = [
        summarise(m, [r for r in runs if r["method"] == m], baselines, reference) for m in methods
    ]
    for row, rank in zip(rows, mean_ranks(rows), strict=True):
        row["mean_rank"] = rank
    single["mean_rank"] = ""
    return [single, *sorted(rows, key=lambda r: -r["delta_m"])]


def noise_floor(rows: Sequence[dict]) -> str:
    """A line on how far apart 'sum' and 'equal' are: the same update, computed two ways."""
    by_name = {r["method"]: r for r in rows}
    if "sum" not in by_name:
        return "('sum' did not run: no noise floor)"
    gap = abs(by_name["sum"]["delta_m"] - by_name["equal"]["delta_m"])
    return (
        f"noise floor: 'sum' (per-task gradients, summed) and 'equal' (one backward of the "
        f"summed loss) take the same step up to rounding, yet end {gap:.2f} points of Delta_m "
        f"apart; smaller differences between rows are not evidence"
    )


def peer_comparison(rows: Sequence[dict]) -> list[str]:
    """Each of our methods beside TorchJD's and LibMTL's implementation of it (Delta_m)."""
    by_name = {r["method"]: r for r in rows}
    ours_of = {f"torchjd:{m}": m for m in torchjd_aggregators() or {}}
    ours_of.update({f"libmtl:{name}": entry[2] for name, entry in LIBMTL.items()})
    lines = []
    for method in dict.fromkeys(ours_of.values()):
        peers = [p for p, m in ours_of.items() if m == method and p in by_name]
        if method in by_name and peers:
            cells = [f"{p:>20} {by_name[p]['delta_m']:+6.2f}" for p in peers]
            lines.append(
                f"  {method:<14} {by_name[method]['delta_m']:+6.2f}   " + "   ".join(cells)
            )
    if lines:
        lines.insert(
            0, "Delta_m of our implementation, and of the peers' (same data, seeds, steps):"
        )
    return lines


def format_table(rows: Sequence[dict]) -> list[str]:
    lines = [
        f"{'method':<24} {'acc left':>14} {'acc right':>14} {'sum MAE':>14} "
        f"{'Delta_m %':>13} {'rank':>5} {'time':>5}  options"
    ]
    for r in rows:
        cells = [
            f"{100 * r[m]:6.2f} +- {100 * r[m + '_std']:4.2f}" for m in ("acc_left", "acc_right")
        ]
        cells.append(f"{r['sum_mae']:6.3f} +- {r['sum_mae_std']:4.3f}")
        rank = "" if r["mean_rank"] == "" else f"{r['mean_rank']:5.1f}"
        time_ = "" if np.isnan(r["time_vs_equal"]) else f"{r['time_vs_equal']:5.1f}"
        lines.append(
            f"{r['method']:<24} {cells[0]:>14} {cells[1]:>14} {cells[2]:>14} "
            f"{r['delta_m']:+6.2f} +- {r['delta_m_std']:4.2f} {rank:>5} {time_:>5}  {r['options']}"
        )
    return lines


KINDS = {  # how each kind of row is drawn: marker, colour
    "single-task": ("*", "black"),
    "paretomtl gradient": ("o", "tab:blue"),
    "paretomtl loss": ("D", "tab:purple"),
    "torchjd": ("s", "tab:orange"),
    "libmtl": ("^", "tab:green"),
}


def kind_of(method: str) -> str:
    """The kind of a table row (a key of :data:`KINDS`)."""
    if method == "single-task" or ":" in method:
        return method.split(":")[0]
    return "paretomtl gradient" if method in solvers.available() else "paretomtl loss"


def label_positions(points: np.ndarray, names: Sequence[str], box: tuple) -> np.ndarray:
    """Where to write each name beside its point (axes fractions) so that no two labels
    overlap: in order of height, each moves up from its point until it is clear of the
    labels placed before it, or down where up would leave the axes. ``box`` is (x0, x1,
    y0, y1, width of a character, line height), in axes fractions."""
    x0, x1, y0, y1, char, line = box
    frac = (points - [x0, y0]) / [x1 - x0, y1 - y0] + [0.012, -line / 2]
    placed: list[tuple[float, float, float]] = []
    out = np.empty_like(frac)

    def clashes(x: float, y: float, width: float) -> bool:
        return any(abs(y - py) < line and x < px + pw and px < x + width for px, py, pw in placed)

    for i in np.argsort(frac[:, 1], kind="stable"):
        x, y = frac[i]
        width = char * len(names[i])
        up = y
        while clashes(x, up, width):
            up += line / 3
        down = y
        while up > 1 - line and clashes(x, down, width) and down > 0:
            down -= line / 3
        y = up if up <= 1 - line else down
        placed.append((x, y, width))
        out[i] = x, y
    return out


def scatter(ax, rows: Sequence[dict], limits: tuple[float, float, float, float] | None) -> None:
    """Both digit accuracies of ``rows``, labelled, in ``limits`` (x0, x1, y0, y1)."""
    points = np.array([[100 * r["acc_left"], 100 * r["acc_right"]] for r in rows])
    if limits is None:
        pad = 0.04 * np.ptp(points, axis=0).max() + 0.2
        low, high = points.min(axis=0) - pad, points.max(axis=0) + np.array([4 * pad, 2 * pad])
        limits = (low[0], high[0], low[1], high[1])
    for r, (x, y) in zip(rows, points, strict=True):
        marker, color = KINDS[kind_of(r["method"])]
        bars = ax.errorbar(
            x, y, 100 * r["acc_right_std"], 100 * r["acc_left_std"], marker, color=color, ms=4
        )
        bars.lines[2][0].set(alpha=0.25, lw=0.6)  # the bars, fainter than the points
        bars.lines[2][1].set(alpha=0.25, lw=0.6)
    names = [r["method"] for r in rows]
    box = (*limits, 0.0105, 0.03)
    for name, (x, y), (lx, ly) in zip(
        names, points, label_positions(points, names, box), strict=True
    ):
        ax.annotate(
            name,
            (x, y),
            xytext=(lx, ly),
            textcoords="axes fraction",
            fontsize=5.5,
            va="bottom",
            arrowprops={"arrowstyle": "-", "lw": 0.3, "color": "0.6"},
        )
    ax.set_xlim(limits[:2])
    ax.set_ylim(limits[2:])
    ax.set_xlabel("test accuracy, left digit (%)")
    ax.set_ylabel("test accuracy, right digit (%)")
    ax.grid(alpha=0.3)


def zoom_limits(rows: Sequence[dict]) -> tuple[float, float, float, float]:
    """The box around the rows within 3 points of the single-task row on both digits."""
    accs = np.array([[100 * r["acc_left"], 100 * r["acc_right"]] for r in rows])
    near = accs[(accs >= accs[0] - 3.0).all(axis=1)]
    return (
        near[:, 0].min() - 0.2,
        near[:, 0].max() + 1.0,
        near[:, 1].min() - 0.2,
        near[:, 1].max() + 0.6,
    )


def agreement(ax, rows: Sequence[dict]) -> None:
    """Delta_m of each peer implementation against ours of the same method."""
    by_name = {r["method"]: r for r in rows}
    ours_of = {f"torchjd:{m}": m for m in torchjd_aggregators() or {}}
    ours_of.update({f"libmtl:{name}": entry[2] for name, entry in LIBMTL.items()})
    pairs = [(p, m) for p, m in ours_of.items() if p in by_name and m in by_name]
    if not pairs:
        ax.set_axis_off()
        return
    points = np.array([[by_name[m]["delta_m"], by_name[p]["delta_m"]] for p, m in pairs])
    for (peer, _), (x, y) in zip(pairs, points, strict=True):
        marker, color = KINDS[kind_of(peer)]
        ax.plot(x, y, marker, color=color, ms=4, alpha=0.8)
    low, high = points.min() - 2.0, points.max() + 2.0
    ax.plot([low, high], [low, high], color="0.5", lw=0.8, ls="--")
    limits = (low, high + 0.25 * (high - low), low, high)
    names = [p for p, _ in pairs]
    for name, (x, y), (lx, ly) in zip(
        names, points, label_positions(points, names, (*limits, 0.0105, 0.03)), strict=True
    ):
        ax.annotate(
            name, (x, y), xytext=(lx, ly), textcoords="axes fraction", fontsize=5.5,
            va="bottom", arrowprops={"arrowstyle": "-", "lw": 0.3, "color": "0.6"},
        )  # fmt: skip
    ax.set_xlim(limits[:2])
    ax.set_ylim(limits[2:])
    ax.set_xlabel("Delta_m of our implementation (%)")
    ax.set_ylabel("Delta_m of the peer's implementation (%)")
    ax.set_title("the same method, two implementations (dashed: equal)", fontsize=10)
    ax.grid(alpha=0.3)


def plot(rows: Sequence[dict], path: Path) -> Path:
    """The two digit accuracies (mean over seeds, error bars the std): every row in a
    first panel, then the crowded corner once per kind of row; and our Delta_m beside
    the peers'. ``rows[0]`` is the single-task row."""
    plt = _gallery.pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(17, 11))
    limits = zoom_limits(rows)
    x0, x1, y0, y1 = limits
    inside = [
        r for r in rows if x0 <= 100 * r["acc_left"] <= x1 and y0 <= 100 * r["acc_right"] <= y1
    ]
    scatter(axes[0, 0], [rows[0]] + [r for r in rows if r not in inside], None)
    box = plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ls="--", lw=0.8)
    axes[0, 0].add_patch(box)
    axes[0, 0].set_title("every row; the dashed box is enlarged in the next panels", fontsize=10)
    panels = {
        (0, 1): ("paretomtl: gradient methods", "paretomtl gradient"),
        (0, 2): ("paretomtl: loss weightings", "paretomtl loss"),
        (1, 0): ("TorchJD's implementations", "torchjd"),
        (1, 1): ("LibMTL's implementations", "libmtl"),
    }
    for where, (title, kind) in panels.items():
        chosen = [rows[0]] + [r for r in inside if kind_of(r["method"]) == kind]
        scatter(axes[where], chosen, limits)
        axes[where].set_title(title, fontsize=10)
    agreement(axes[1, 2], rows)
    for kind, (marker, color) in KINDS.items():
        axes[0, 0].plot([], [], marker, color=color, label=kind)
    axes[0, 0].legend(loc="lower right", fontsize=8)
    fig.suptitle("MultiDigits: accuracy on the two digits, mean +- std over the seeds", fontsize=12)
    fig.tight_layout()
    return _gallery.save(fig, path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _gallery.parser(NAME, __doc__)
    parser.add_argument(
        "--methods",
        default=None,
        help="comma-separated rows to run (default: all; the single-task "
        "baselines and 'equal' always run)",
    )
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 3; quick 1)")
    parser.add_argument("--layout", choices=("side", "overlay"), default="side")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    everything, missing = available_methods()
    for line in missing:
        print(f"note: {line}")
    methods = everything if args.methods is None else args.methods.split(",")
    unknown = [m for m in methods if m not in everything]
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {', '.join(everything)}")
    methods = [REFERENCE, *[m for m in methods if m != REFERENCE]]
    seeds = range(args.seeds if args.seeds is not None else 1 if args.quick else 3)
    size = QUICK if args.quick else FULL
    rows_to_run = [f"single:{t}" for t in TASKS] + methods
    print(
        f"MultiDigits ({args.layout}): {size.train_pairs} train / {size.test_pairs} test pairs, "
        f"{size.steps} steps of Adam (lr {size.lr:g}), batch {size.batch}, seeds "
        f"{list(seeds)}; {len(methods)} methods + 3 single-task baselines"
    )
    tic = time.perf_counter()
    runs = []
    jobs = [(seed, m) for seed in seeds for m in rows_to_run]
    data = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # TorchJD's Nash-MTL solves a cvxpy problem that cvxpy warns about on every call.
        warnings.filterwarnings("ignore", message="You are solving a parameterized problem")
        for seed, method in _gallery.progress(jobs, total=len(jobs), desc=NAME):
            if seed not in data:
                data[seed] = make_data(seed, args.quick, args.layout)
            runs.append(train(method, seed, data[seed], quick=args.quick))
    out = _gallery.out_dir(args.out)
    _gallery.write_csv(
        out / "runs.csv",
        [{**r, "projections": "" if r["projections"] is None else r["projections"]} for r in runs],
    )
    rows = aggregate(runs)
    _gallery.write_csv(out / "table.csv", rows)
    print()
    for line in format_table(rows):
        print(line)
    print()
    for line in peer_comparison(rows):
        print(line)
    print()
    print(noise_floor(rows))
    print(
        "acc: test accuracy (%); sum MAE in digit units; Delta_m: LibMTL's multi-task "
        "improvement over the single-task networks (%, higher is better); rank: mean rank "
        "over the three metrics; time: CPU time per step / that of 'equal' (one backward of "
        "the summed loss) in the same run"
    )
    plot(rows, out / "accuracies.png")
    print(f"table: {out / 'table.csv'}, runs: {out / 'runs.csv'}")
    print(f"total {time.perf_counter() - tic:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
