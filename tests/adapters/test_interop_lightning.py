"""A paretomtl Aggregator inside PyTorch Lightning's Trainer (manual optimisation).

One epoch through ``lightning.pytorch.Trainer`` with :func:`manual_backward` gives the
same parameters, step by step, as the plain training loop with
``Aggregator.backward``; Lightning's backward hooks run around each aggregated
backward (callbacks and the module's own), and :func:`log_step` puts the step's
weights and conflict statistics into the Trainer's metrics.
"""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
try:
    import lightning.pytorch as L
except ImportError:
    pytest.skip("lightning is not installed (pip install lightning)", allow_module_level=True)
except RuntimeError as exc:  # e.g. a CUDA build of torchvision beside a CPU torch
    pytest.skip(f"lightning does not import here: {exc}", allow_module_level=True)

from paretomtl.adapters.lightning import log_step, manual_backward  # noqa: E402
from paretomtl.adapters.torch import Aggregator  # noqa: E402

TASKS, BATCH, BATCHES = 3, 16, 4


def dataset():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH * BATCHES, 5, generator=g)
    y = torch.stack([torch.sin((k + 1) * x[:, 0]) * (-1) ** k for k in range(TASKS)], dim=1)
    return torch.utils.data.TensorDataset(x, y)


class MultiTask(L.LightningModule):
    def __init__(self, method="mgda"):
        super().__init__()
        self.automatic_optimization = False
        torch.manual_seed(0)
        self.trunk = torch.nn.Sequential(
            torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 8), torch.nn.Tanh()
        )
        self.heads = torch.nn.ModuleList(torch.nn.Linear(8, 1) for _ in range(TASKS))
        tracked = method != "dwa"  # a loss weighting forms no task gradients
        self.aggregator = Aggregator(method, track_conflicts=tracked, seed=0)
        self.infos, self.after_backward = [], []

    def task_losses(self, batch):
        x, y = batch
        z = self.trunk(x)
        return [((h(z).squeeze(-1) - y[:, k]) ** 2).mean() for k, h in enumerate(self.heads)]

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        opt.zero_grad()
        info = manual_backward(
            self, self.task_losses(batch), self.trunk.parameters(), self.aggregator
        )
        opt.step()
        log_step(self, info, names=["a", "b", "c"], on_step=True, on_epoch=False)
        self.infos.append(info)

    def on_after_backward(self):
        self.after_backward.append(self.trunk[0].weight.grad.detach().clone())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.2, momentum=0.5)

    def on_save_checkpoint(self, checkpoint):
        checkpoint["paretomtl"] = self.aggregator.state_dict()

    def on_load_checkpoint(self, checkpoint):
        self.aggregator.load_state_dict(checkpoint["paretomtl"])


class Hooks(L.Callback):
    def __init__(self):
        self.before, self.after = [], 0

    def on_before_backward(self, trainer, pl_module, loss):
        self.before.append(float(loss))

    def on_after_backward(self, trainer, pl_module):
        self.after += 1


def fit(module, callbacks=(), epochs=1, root=None, ckpt_path=None):
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=root is not None,
        default_root_dir=root,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    )
    loader = torch.utils.data.DataLoader(dataset(), batch_size=BATCH, shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # num_workers, log_every_n_steps advice
        trainer.fit(module, loader, ckpt_path=ckpt_path)
    return trainer


def plain_loop(module):
    """The same training without Lightning: Aggregator.backward and the optimizer."""
    opt = module.configure_optimizers()
    grads, infos = [], []
    for batch in torch.utils.data.DataLoader(dataset(), batch_size=BATCH, shuffle=False):
        opt.zero_grad()
        infos.append(
            module.aggregator.backward(module.task_losses(batch), module.trunk.parameters())
        )
        grads.append(module.trunk[0].weight.grad.detach().clone())
        opt.step()
    return grads, infos


@pytest.mark.parametrize("method", ["mgda", "gradvac", "dwa"])
def test_trainer_epoch_equals_the_plain_loop(method):
    hooks = Hooks()
    trained = MultiTask(method)
    trainer = fit(trained, [hooks])
    reference = MultiTask(method)
    grads, infos = plain_loop(reference)

    assert len(trained.infos) == BATCHES
    for name, p in reference.named_parameters():
        q = dict(trained.named_parameters())[name]
        torch.testing.assert_close(q, p, rtol=0, atol=0, msg=name)
    for got, want in zip(trained.after_backward, grads, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    for got, want in zip(trained.infos, infos, strict=True):
        np.testing.assert_array_equal(got.weights, want.weights)

    # Lightning's hooks ran around every aggregated backward, with the summed loss.
    assert hooks.after == BATCHES and len(hooks.before) == BATCHES
    np.testing.assert_allclose(hooks.before, [i.losses.sum() for i in infos], rtol=1e-6)

    metrics = trainer.callback_metrics  # the last step's logged values
    last = trained.infos[-1]
    for k, name in enumerate("abc"):
        assert float(metrics[f"mtl/weight/{name}"]) == pytest.approx(last.weights[k], rel=1e-6)
        assert float(metrics[f"mtl/loss/{name}"]) == pytest.approx(last.losses[k], rel=1e-6)
    if last.gram is not None:
        cos = last.gram[0, 1] / np.sqrt(last.gram[0, 0] * last.gram[1, 1])
        assert float(metrics["mtl/cosine/a-b"]) == pytest.approx(cos, abs=1e-6)
        assert float(metrics["mtl/conflicts/step"]) == BATCHES
        assert "mtl/conflicts/conflict_frequency/b-c" in metrics


def test_automatic_optimization_is_refused():
    module = MultiTask()
    module.automatic_optimization = True
    losses = module.task_losses(dataset()[:BATCH])
    with pytest.raises(ValueError, match="automatic_optimization"):
        manual_backward(module, losses, module.trunk.parameters(), module.aggregator)
    with pytest.raises(TypeError, match="Aggregator"):
        manual_backward(MultiTask(), losses, module.trunk.parameters(), "mgda")


def test_outside_a_trainer_it_is_the_aggregator():
    """A module not attached to a Trainer: no hooks, the Aggregator's step."""
    module, reference = MultiTask(), MultiTask()
    batch = dataset()[:BATCH]
    info = manual_backward(
        module, module.task_losses(batch), module.trunk.parameters(), module.aggregator
    )
    expected = reference.aggregator.backward(
        reference.task_losses(batch), reference.trunk.parameters()
    )
    np.testing.assert_array_equal(info.weights, expected.weights)
    torch.testing.assert_close(module.trunk[0].weight.grad, reference.trunk[0].weight.grad)
    assert module.after_backward == []  # no Trainer, no hooks


def test_checkpoint_resume_continues_bit_for_bit(tmp_path):
    """Two epochs straight, or one epoch, a Lightning checkpoint (the module saves the
    aggregator's state_dict in it) and a resumed second epoch: the same parameters
    and the same aggregator state (GradVac's targets, its generator, the conflicts)."""
    straight = MultiTask("gradvac")
    fit(straight, epochs=2)
    first = fit(MultiTask("gradvac"), epochs=1, root=str(tmp_path / "a"))
    path = first.checkpoint_callback.best_model_path
    assert path
    resumed = MultiTask("gradvac")
    fit(resumed, epochs=2, root=str(tmp_path / "b"), ckpt_path=path)
    for (name, p), q in zip(straight.named_parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(q, p, rtol=0, atol=0, msg=name)
    a, b = straight.aggregator.state_dict(), resumed.aggregator.state_dict()
    assert a["steps"] == b["steps"] == 2 * BATCHES
    assert a["rng"] == b["rng"]
    np.testing.assert_array_equal(a["method_state"]["targets"], b["method_state"]["targets"])
    for key in ("first_moment", "second_moment", "conflict_moment", "step"):
        np.testing.assert_array_equal(a["conflicts"][key], b["conflicts"][key])
    np.testing.assert_array_equal(straight.infos[-1].weights, resumed.infos[-1].weights)
