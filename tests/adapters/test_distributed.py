"""The aggregator over several processes (issue 14): gloo over loopback, 2 and 4 ranks.

Two launches in all (a module-scoped fixture, one per world size R): every rank runs the
same list of scenarios (tests/adapters/_distributed_worker.py) and puts its numpy
results on a queue; the tests here compare them with references built in this process,
without a process group: one process on the whole global batch (``distributed="off"``)
for the exact, sharded and representation modes and for accumulate(), the mean over the
ranks of one process per rank batch for local mode. A launch that hangs fails after
``LAUNCH_TIMEOUT`` seconds and its processes are killed.

The single-process tests at the end check accumulate() against a Jacobian summed by
hand and solved with paretomtl.solvers.mgda.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import socket
import time
from dataclasses import dataclass, field

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.distributed as dist  # noqa: E402

from paretomtl import solvers  # noqa: E402
from paretomtl.adapters.torch import Aggregator  # noqa: E402
from tests.adapters import _distributed_worker as W  # noqa: E402

LAUNCH_TIMEOUT = 120.0  # seconds for one launch (every scenario of every rank)
REL = 1e-6  # the issue's tolerance, relative to the largest gradient entry

GLOO = dist.is_available() and dist.is_gloo_available()
try:
    from torch.distributed.fsdp import fully_shard  # noqa: F401

    FSDP = GLOO
except ImportError:  # pragma: no cover - torch < 2.6
    FSDP = False

multiprocess = pytest.mark.skipif(not GLOO, reason="torch.distributed with gloo is unavailable")
needs_fsdp = pytest.mark.skipif(not FSDP, reason="torch.distributed.fsdp.fully_shard unavailable")

GRADIENT = ["mgda", "pareto-step", "pcgrad", "gradvac"]
EXACT = [(m, x) for m in GRADIENT for x in ("all-reduce", "reduce-scatter")] + [
    ("gradnorm", "auto"),
    ("dwa", "auto"),
]
SHARDED = [*GRADIENT, "dwa"]
FLOAT32 = [
    ("mgda", "exact", "reduce-scatter"),
    ("pcgrad", "exact", "all-reduce"),
    ("mgda", "sharded", "auto"),
]
REPRESENTATION = ["mgda", "pcgrad"]
ACCUMULATE = [
    ("mgda", "exact", "all-reduce"),
    ("mgda", "exact", "reduce-scatter"),
    ("pcgrad", "exact", "reduce-scatter"),
    ("gradvac", "exact", "all-reduce"),
    ("mgda", "sharded", "auto"),
]
DDP = [("mgda", "auto"), ("pcgrad", "reduce-scatter"), ("dwa", "auto")]
NONFINITE = [  # (where the NaN is, on_nonfinite, distributed, exchange, method)
    ("loss", "raise", "exact", "all-reduce", "mgda"),
    ("loss", "skip", "exact", "all-reduce", "mgda"),
    ("loss", "raise", "exact", "reduce-scatter", "mgda"),
    ("loss", "skip", "exact", "reduce-scatter", "mgda"),
    ("loss", "skip", "local", "auto", "mgda"),
    ("loss", "skip", "exact", "auto", "dwa"),
    ("gradient", "raise", "exact", "all-reduce", "mgda"),
    ("gradient", "skip", "exact", "reduce-scatter", "mgda"),
    ("gradient", "skip", "local", "auto", "mgda"),
    ("loss", "skip", "sharded", "auto", "mgda"),
    ("gradient", "skip", "sharded", "auto", "mgda"),
    ("loss", "raise", "sharded", "auto", "mgda"),
]
MICRO = 3  # micro-batches per rank and optimizer step in the accumulate() scenarios


def plan() -> list[tuple[str, str, dict]]:
    """(key, scenario, options) in the order every rank runs them; those that leave a
    model in an unusual state (a raise under fully_shard, DDP's own error) come last."""
    out = [
        (f"train/exact/{x}/{m}", "train", dict(method=m, mode="exact", exchange=x))
        for m, x in EXACT
    ]
    if FSDP:
        out += [(f"train/sharded/{m}", "train", dict(method=m, mode="sharded")) for m in SHARDED]
    out += [
        (f"float32/{mo}/{x}/{m}", "train", dict(method=m, mode=mo, exchange=x, dtype="float32"))
        for m, mo, x in FLOAT32
        if FSDP or mo != "sharded"
    ]
    out += [
        (f"checkpoint/{x}", "checkpoint", dict(exchange=x))
        for x in ("all-reduce", "reduce-scatter")
    ]
    out += [(f"representation/{m}", "representation", dict(method=m)) for m in REPRESENTATION]
    out += [("local", "local", {})]
    out += [
        (f"accumulate/{mo}/{x}/{m}", "accumulate", dict(method=m, mode=mo, exchange=x, micro=MICRO))
        for m, mo, x in ACCUMULATE
        if FSDP or mo != "sharded"
    ]
    out += [("mismatch", "mismatch", {}), ("traffic", "traffic", {})]
    out += [(f"ddp/{x}/{m}", "ddp", dict(method=m, exchange=x)) for m, x in DDP]
    out += [
        (
            "nonfinite/" + "/".join(case),
            "nonfinite",
            dict(zip(("where", "policy", "mode", "exchange", "method"), case, strict=True)),
        )
        for case in NONFINITE
        if FSDP or case[2] != "sharded"
    ]
    out += [(f"ddp-without/{d}", "ddp_without", dict(distributed=d)) for d in ("auto", "off")]
    return out


# -- launching ----------------------------------------------------------------------------
@dataclass
class Launch:
    R: int
    seconds: float = 0.0
    results: dict = field(default_factory=dict)  # key -> {rank: result}
    errors: dict = field(default_factory=dict)  # key -> {rank: traceback}
    timing: dict = field(default_factory=dict)  # key -> seconds on rank 0
    problem: str | None = None  # a timeout, a rank that died
    ready: float = 0.0  # seconds until every rank had joined the group

    def get(self, key: str) -> list:
        """Every rank's result of scenario ``key``, or the test fails with the reason."""
        if key in self.errors:
            detail = "\n".join(f"rank {r}:\n{tb}" for r, tb in sorted(self.errors[key].items()))
            pytest.fail(f"R={self.R}, {key} raised on some rank:\n{detail}")
        per = self.results.get(key, {})
        if len(per) != self.R:
            others = {k: sorted(v) for k, v in self.errors.items()}
            pytest.fail(
                f"R={self.R}, {key}: results from ranks {sorted(per)} only "
                f"({self.problem or 'no reason'}; errors elsewhere: {others})"
            )
        return [per[r] for r in range(self.R)]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _environment(**values):
    """os.environ with ``values`` for the spawned processes; restored afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def launch(R: int, steps: list) -> Launch:
    """Run ``steps`` on R spawned ranks; collect until every rank is done or the time
    is up; kill what is left."""
    ctx = torch.multiprocessing.get_context("spawn")
    q = ctx.Queue()
    out = Launch(R)
    port = _free_port()
    start = time.perf_counter()
    with _environment(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"):
        procs = [
            ctx.Process(target=W.main, args=(rank, R, port, q, steps), daemon=True)
            for rank in range(R)
        ]
        for p in procs:
            p.start()
    done: set[int] = set()
    try:
        while len(done) < R:
            left = start + LAUNCH_TIMEOUT - time.perf_counter()
            if left <= 0:
                out.problem = f"timed out after {LAUNCH_TIMEOUT:.0f} s"
                break
            try:
                rank, key, status, payload, seconds = q.get(timeout=min(left, 2.0))
            except queue.Empty:
                if not any(p.is_alive() for p in procs) and q.empty():
                    out.problem = f"ranks {sorted(set(range(R)) - done)} ended without a report"
                    break
                continue
            if status == "ready":
                out.ready = time.perf_counter() - start
            elif status == "ok":
                out.results.setdefault(key, {})[rank] = payload
                if rank == 0:
                    out.timing[key] = seconds
            elif status == "error":
                out.errors.setdefault(key or "init", {})[rank] = payload
                if key is None:
                    done.add(rank)
            else:  # "done", or "stopped" (the ranks ended a scenario differently)
                if status == "stopped":
                    out.problem = f"rank {rank} stopped {payload}"
                done.add(rank)
    finally:
        for p in procs:
            p.join(timeout=max(1.0, start + LAUNCH_TIMEOUT + 10 - time.perf_counter()))
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(5)
        q.close()
        q.cancel_join_thread()
    out.seconds = time.perf_counter() - start
    return out


@pytest.fixture(scope="module", params=[2, 4], ids=lambda R: f"R{R}")
def ranks(request) -> Launch:
    """One launch per world size, every scenario; the wall time is printed."""
    if not GLOO:
        pytest.skip("torch.distributed with gloo is unavailable")
    result = launch(request.param, plan())
    if "init" in result.errors:  # the port was taken between choosing and binding it
        result = launch(request.param, plan())
    slowest = sorted(result.timing.items(), key=lambda kv: -kv[1])[:3]
    line = (
        f"[test_distributed] R={result.R}: launch {result.seconds:.1f} s (group joined "
        f"after {result.ready:.1f} s, scenarios {sum(result.timing.values()):.1f} s); slowest "
        + ", ".join(f"{k} {s:.2f} s" for k, s in slowest)
        + (f"; {result.problem}" if result.problem else "")
    )
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)
    return result


# -- references in this process --------------------------------------------------------
@functools.cache
def one_process(R, method, steps=3, micro=1, mode="autograd", dtype="float64"):
    """One process on the whole global batch of each step, ``distributed="off"``; the
    losses of an accumulated step are scaled by ``micro`` (the sum of micro-batch
    gradients is ``micro`` times the gradient of the global mean loss)."""
    dtype = getattr(torch, dtype)
    net = W.Net(dtype)
    opt = torch.optim.SGD(net.parameters(), lr=W.LR)
    agg = Aggregator(method, seed=0, options=W.OPTIONS.get(method), distributed="off", mode=mode)
    out = {"grads": [], "weights": [], "losses": []}
    for t in range(steps):
        x, y = W.batch(t, R, micro, dtype)
        opt.zero_grad(set_to_none=True)
        info = W.step(agg, net, x, y, scale=micro, features=mode == "representation")
        out["grads"].append(W.grads(net))
        out["weights"].append(np.array(info.weights))
        out["losses"].append(np.array(info.losses))
        opt.step()
    out["params"] = W.flat(W.parameters(net))
    out["state"] = agg.state_dict()
    return out


@functools.cache
def rank_means(R, steps=2):
    """Local mode's definition: each step, the mean over the ranks of one process's
    MGDA step on that rank's batch alone; SGD on the mean."""
    net = W.Net()
    opt = torch.optim.SGD(net.parameters(), lr=W.LR)
    out = {"grads": [], "weights": []}
    for t in range(steps):
        x, y = W.batch(t, R)
        per_rank, weights = [], []
        for r in range(R):
            opt.zero_grad(set_to_none=True)
            info = W.step(Aggregator("mgda", distributed="off"), net, x[W.rows(r)], y[W.rows(r)])
            per_rank.append([p.grad.clone() for p in W.parameters(net)])
            weights.append(info.weights)
        for i, p in enumerate(W.parameters(net)):
            p.grad = sum(g[i] for g in per_rank) / R
        out["grads"].append(W.grads(net))
        out["weights"].append(np.array(weights))
        opt.step()
    return out


def assert_rel(actual, expected, rel=REL, what=""):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, what
    scale = np.abs(expected).max()
    err = np.abs(actual - expected).max() / scale
    assert err <= rel, f"{what}: relative difference {err:.3g} > {rel:g}"


def leaves(tree, path=""):
    """(path, leaf) of a state dict's nested dicts, lists and tuples."""
    if isinstance(tree, dict):
        for k in sorted(tree, key=str):
            yield from leaves(tree[k], f"{path}/{k}")
    elif isinstance(tree, list | tuple):
        for i, v in enumerate(tree):
            yield from leaves(v, f"{path}[{i}]")
    else:
        yield path, tree


def assert_same_state(a, b, *, exact=True, what=""):
    """Equal structure; every array leaf array_equal (or, with exact=False, within
    REL of the largest entry), every other leaf ==."""
    la, lb = list(leaves(a)), list(leaves(b))
    assert [p for p, _ in la] == [p for p, _ in lb], f"{what}: different state structure"
    for (path, x), (_, y) in zip(la, lb, strict=True):
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if exact:
                assert np.array_equal(x, y), f"{what}: {path} differs"
            else:
                x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
                bound = REL * max(1.0, np.abs(y).max(initial=0.0))
                assert np.abs(x - y).max(initial=0.0) <= bound, f"{what}: {path} differs"
        elif isinstance(x, float) and not exact:
            assert x == pytest.approx(y, rel=REL, abs=REL), f"{what}: {path} differs"
        else:
            assert x == y, f"{what}: {path} differs ({x!r} != {y!r})"


def assert_equals_one_process(per_rank, ref, steps, what):
    for rank, out in enumerate(per_rank):
        for t in range(steps):
            where = f"{what}, rank {rank}, step {t}"
            assert_rel(out["grads"][t], ref["grads"][t], what=where + ", gradients")
            np.testing.assert_allclose(out["weights"][t], ref["weights"][t], atol=REL, rtol=0)


def assert_bit_identical(per_rank, keys, what):
    first = per_rank[0]
    for rank, out in enumerate(per_rank[1:], start=1):
        for key in keys:
            a, b = out[key], first[key]
            if isinstance(a, list):
                for t, (x, y) in enumerate(zip(a, b, strict=True)):
                    assert np.array_equal(x, y), f"{what}: {key}[{t}] of rank {rank} != rank 0"
            else:
                assert np.array_equal(a, b), f"{what}: {key} of rank {rank} != rank 0"


# -- 1, 2: exact and sharded modes equal one process; the ranks are bit-identical --------
@multiprocess
@pytest.mark.parametrize("method,exchange", EXACT)
def test_exact_mode_equals_one_process_on_the_global_batch(ranks, method, exchange):
    per_rank = ranks.get(f"train/exact/{exchange}/{method}")
    assert all(out["mode"] == "exact" for out in per_rank)
    ref = one_process(ranks.R, method)
    assert_equals_one_process(per_rank, ref, 3, f"exact {exchange} {method}")
    for rank, out in enumerate(per_rank):  # the global mean losses, seen by every rank
        for t in range(3):
            np.testing.assert_allclose(out["losses"][t], ref["losses"][t], rtol=REL)
        assert_same_state(out["state"], ref["state"], exact=False, what=f"rank {rank} state")
        assert_rel(out["params"], ref["params"], what=f"rank {rank} parameters")


@multiprocess
@needs_fsdp
@pytest.mark.parametrize("method", SHARDED)
def test_sharded_mode_equals_one_process_on_the_global_batch(ranks, method):
    per_rank = ranks.get(f"train/sharded/{method}")
    assert all(out["mode"] == "sharded" for out in per_rank)
    ref = one_process(ranks.R, method)
    assert_equals_one_process(per_rank, ref, 3, f"sharded {method}")
    for rank, out in enumerate(per_rank):
        assert_same_state(out["state"], ref["state"], exact=False, what=f"rank {rank} state")
        assert_rel(out["params"], ref["params"], what=f"rank {rank} parameters")


@multiprocess
@pytest.mark.parametrize("method,mode,exchange", FLOAT32)
def test_float32_model_within_the_issues_tolerance(ranks, method, mode, exchange):
    """A float32 model: the ranks' sums of float32 gradients against one process's,
    about 2e-7 relative here; the issue's 1e-6 bound."""
    if mode == "sharded" and not FSDP:
        pytest.skip("torch.distributed.fsdp.fully_shard unavailable")
    per_rank = ranks.get(f"float32/{mode}/{exchange}/{method}")
    ref = one_process(ranks.R, method, dtype="float32")
    assert_equals_one_process(per_rank, ref, 3, f"float32 {mode} {exchange} {method}")
    assert_bit_identical(per_rank, ["weights", "grads", "params"], f"float32 {mode} {method}")


TRAINED = [f"train/exact/{x}/{m}" for m, x in EXACT] + [f"train/sharded/{m}" for m in SHARDED]


@multiprocess
@pytest.mark.parametrize("key", TRAINED)
def test_every_rank_holds_bit_identical_weights_and_state(ranks, key):
    if key.startswith("train/sharded") and not FSDP:
        pytest.skip("torch.distributed.fsdp.fully_shard unavailable")
    per_rank = ranks.get(key)
    assert_bit_identical(per_rank, ["weights", "grads", "params"], key)
    for rank, out in enumerate(per_rank[1:], start=1):
        assert_same_state(out["state"], per_rank[0]["state"], what=f"{key}, rank {rank}")


# -- 3: a checkpoint of a stateful method resumes bit for bit --------------------------
@multiprocess
@pytest.mark.parametrize("exchange", ["all-reduce", "reduce-scatter"])
def test_gradvac_checkpointed_on_every_rank_resumes_bit_for_bit(ranks, exchange):
    per_rank = ranks.get(f"checkpoint/{exchange}")
    for rank, out in enumerate(per_rank):
        for key in ("weights", "grads"):
            for t in range(2):
                assert np.array_equal(out["resumed"][key][t], out["continued"][key][t]), (
                    f"rank {rank}: resumed {key} at step {t + 2} differ from continuing"
                )
        # The state matters: a fresh GradVac at the same parameters weighs otherwise.
        assert not np.array_equal(out["not_loaded"]["weights"][0], out["continued"]["weights"][0])
    for out in per_rank[1:]:
        assert_same_state(out["saved"], per_rank[0]["saved"], what="checkpoints")
    for rank, out in enumerate(per_rank):  # loaded on rank 0 only: refused everywhere
        assert out["partial"] is not None, f"rank {rank} stepped with a partial load"
        assert "different random generators or states" in out["partial"]
    ref = one_process(ranks.R, "gradvac", steps=4)
    for out in per_rank:
        for t in range(2):
            assert_rel(out["resumed"]["grads"][t], ref["grads"][t + 2], what="resumed")


# -- 4: a NaN on one rank: every rank raises or skips, together -------------------------
@multiprocess
@pytest.mark.parametrize("where,policy,mode,exchange,method", NONFINITE)
def test_a_nan_on_one_rank_stops_every_rank_together(ranks, where, policy, mode, exchange, method):
    key = "/".join(("nonfinite", where, policy, mode, exchange, method))
    if mode == "sharded" and not FSDP:
        pytest.skip("torch.distributed.fsdp.fully_shard unavailable")
    per_rank = ranks.get(key)
    for rank, out in enumerate(per_rank):
        if policy == "raise":
            assert out["raised"] is not None, f"rank {rank} did not raise"
            assert "non-finite" in out["raised"]
        else:
            assert out["raised"] is None, f"rank {rank} raised: {out['raised']}"
            assert out["skipped"] is True, f"rank {rank} did not skip"
        assert np.all(out["after"] == 7.0), f"rank {rank}: a .grad changed"
        assert out["next_skipped"] is False
    # The next, finite step runs on every rank, identically, and is right.
    same = ["next_grads"] if mode == "local" else ["next_grads", "next_weights"]
    assert_bit_identical(per_rank, same, key)
    if mode == "local":
        expected = _local_step_from_initial(ranks.R, 1)
    else:
        net = W.Net()
        x, y = W.batch(1, ranks.R)
        agg = Aggregator(method, distributed="off", options=W.OPTIONS.get(method))
        W.step(agg, net, x, y)
        expected = W.grads(net)
    assert_rel(per_rank[0]["next_grads"], expected, what=f"{key}: the next step")


def _local_step_from_initial(R, t):
    """Mean over the ranks of one process's MGDA step on batch t, initial parameters."""
    x, y = W.batch(t, R)
    total = 0
    for r in range(R):
        net = W.Net()
        W.step(Aggregator("mgda", distributed="off"), net, x[W.rows(r)], y[W.rows(r)])
        total = total + W.grads(net)
    return total / R


# -- 5: local mode ------------------------------------------------------------------------
@multiprocess
def test_local_mode_averages_each_ranks_own_solution(ranks):
    per_rank = ranks.get("local")
    ref = rank_means(ranks.R)
    assert all(out["mode"] == "local" for out in per_rank)
    assert_bit_identical(per_rank, ["grads", "params"], "local")
    for t in range(2):
        weights = np.array([out["weights"][t] for out in per_rank])
        assert not np.allclose(weights, weights[0]), f"step {t}: every rank has the same weights"
        np.testing.assert_allclose(weights, ref["weights"][t], atol=REL, rtol=0)
        assert_rel(per_rank[0]["grads"][t], ref["grads"][t], what=f"local step {t}")
    # The global batch's exact step is something else (the point of local mode's caveat).
    exact = one_process(ranks.R, "mgda", steps=1)["grads"][0]
    assert np.abs(per_rank[0]["grads"][0] - exact).max() > 1e3 * REL * np.abs(exact).max()


# -- 6: a DDP-wrapped model --------------------------------------------------------------
@multiprocess
@pytest.mark.parametrize("method,exchange", DDP)
def test_ddp_wrapped_model_handed_over_equals_one_process(ranks, method, exchange):
    per_rank = ranks.get(f"ddp/{exchange}/{method}")
    assert all(out["mode"] == "exact" for out in per_rank)
    assert_equals_one_process(per_rank, one_process(ranks.R, method), 3, f"ddp {method}")
    assert_bit_identical(per_rank, ["grads", "weights"], f"ddp {method}")


@multiprocess
def test_ddp_wrapped_model_not_handed_over_hits_torchs_reducer_error(ranks):
    """The issue's report: per-task gradients outside DDP's reducer, one process's step
    on each rank (``distributed="off"``): the second forward raises torch's error."""
    per_rank = ranks.get("ddp-without/off")
    for rank, out in enumerate(per_rank):
        assert out["error"] is not None, f"rank {rank}: no error"
        assert out["error"].startswith("step 1: ")
        assert "Expected to have finished reduction" in out["error"]
    # ... after a first step whose trunk gradients were never averaged.
    trunk = sum(p.numel() for p in W.Net().trunk.parameters())
    assert not np.array_equal(per_rank[0]["grads"][0][:trunk], per_rank[1]["grads"][0][:trunk])


@multiprocess
def test_ddp_wrapped_model_not_handed_over_in_exact_mode_is_still_exact(ranks):
    """Without ddp= but in exact mode, no gradient passes through DDP's reducer (every
    gradient comes from torch.autograd.grad), so its hooks never fire: the aggregator's
    own averaging gives one process's step (this torch raises nothing; a version whose
    reducer insists would raise torch's RuntimeError, which is allowed here)."""
    per_rank = ranks.get("ddp-without/auto")
    if any(out["error"] is not None for out in per_rank):
        assert all("Expected to have finished reduction" in out["error"] for out in per_rank)
        pytest.skip("this torch's reducer raises without ddp=: " + per_rank[0]["error"][:80])
    assert_equals_one_process(per_rank, one_process(ranks.R, "mgda", steps=2), 2, "ddp auto")


# -- 7: representation mode -----------------------------------------------------------
@multiprocess
@pytest.mark.parametrize("method", REPRESENTATION)
def test_representation_mode_exact_equals_one_process(ranks, method):
    per_rank = ranks.get(f"representation/{method}")
    ref = one_process(ranks.R, method, steps=2, mode="representation")
    assert_equals_one_process(per_rank, ref, 2, f"representation {method}")
    assert_bit_identical(per_rank, ["grads", "weights"], f"representation {method}")


# -- 8: accumulate() over ranks -----------------------------------------------------------
@multiprocess
@pytest.mark.parametrize("method,mode,exchange", ACCUMULATE)
def test_accumulate_over_ranks_solves_once_on_the_whole_step(ranks, method, mode, exchange):
    if mode == "sharded" and not FSDP:
        pytest.skip("torch.distributed.fsdp.fully_shard unavailable")
    per_rank = ranks.get(f"accumulate/{mode}/{exchange}/{method}")
    # J = sum over the micro-batches, mean over the ranks = MICRO x the Jacobian of the
    # global batch's mean losses: one process with the losses scaled by MICRO.
    ref = one_process(ranks.R, method, steps=2, micro=MICRO)
    for out in per_rank:
        assert out["inside"] == [(True, True)] * (2 * (MICRO - 1))
        assert out["accumulated"] is False
    assert_equals_one_process(per_rank, ref, 2, f"accumulate {mode} {method}")
    assert_bit_identical(per_rank, ["grads", "weights"], f"accumulate {mode} {method}")


# -- 9: ranks that disagree ------------------------------------------------------------
@multiprocess
def test_ranks_passing_different_tasks_or_parameters_all_raise(ranks):
    per_rank = ranks.get("mismatch")
    for rank, out in enumerate(per_rank):
        for case in ("tasks", "weighting tasks", "shared"):
            assert out[case] is not None, f"rank {rank} did not raise for different {case}"
            assert out[case + " untouched"], f"rank {rank}: .grad written for {case}"
        assert "number of tasks" in out["tasks"]
        assert "shared entries" in out["shared"]
        assert out["stand-ins"] is not None and "before training" in out["stand-ins"]
        assert out["stand-ins untouched"], f"rank {rank}: .grad written for stand-ins"
    net = W.Net()
    x, y = W.batch(0, ranks.R)
    W.step(Aggregator("mgda", distributed="off"), net, x, y)
    for out in per_rank:  # the group is still usable
        assert_rel(out["next_grads"], W.grads(net), what="the step after the refusal")
    for rank, out in enumerate(per_rank):
        assert out["seeds"] is not None, f"rank {rank}: PCGrad seeded per rank not refused"
        assert "same seed" in out["seeds"]
    # Unseeded PCGrad draws the same task orders on every rank (rank 0's generator).
    assert_bit_identical(per_rank, ["unseeded"], "unseeded pcgrad")
    for rank, out in enumerate(per_rank):
        assert out["given object"] is None, f"rank {rank}: {out['given object']}"
    assert_bit_identical(per_rank, ["given object weights"], "a given DWA object")


# -- 10: traffic --------------------------------------------------------------------------
@multiprocess
def test_traffic_reduce_scatter_below_all_reduce_local_about_ddp(ranks):
    per_rank = ranks.get("traffic")
    out = per_rank[0]
    R, M, T, s = ranks.R, out["M"], out["T"], out["itemsize"]
    for other in per_rank[1:]:
        assert other == out
    ring = 2 * (R - 1) / R  # an all-reduce's bytes sent per rank, per byte
    ddp = ring * (M + T) * s  # plain DDP: one all-reduce of every gradient
    all_reduce, reduce_scatter, local = (
        out[k][0] for k in ("all-reduce", "reduce-scatter", "local")
    )
    assert min(out[k][1] for k in ("all-reduce", "reduce-scatter", "local")) > 0
    assert reduce_scatter < all_reduce
    assert ddp <= local <= 1.1 * ddp
    assert ring * (W.K * M + T) * s <= all_reduce <= 1.1 * ring * (W.K * M + T) * s
    assert reduce_scatter <= ((W.K + 1) / 2 + 0.1) * ddp


# -- accumulate() in one process ---------------------------------------------------------
def _per_task(losses, params):
    """K x M: one torch.autograd.grad per task, flattened."""
    return np.stack(
        [
            torch.cat(
                [g.reshape(-1) for g in torch.autograd.grad(loss, params, retain_graph=True)]
            ).numpy()
            for loss in losses
        ]
    )


def test_accumulate_in_one_process_solves_once_on_the_summed_jacobian():
    net = W.Net()
    trunk, heads = list(net.trunk.parameters()), list(net.heads.parameters())
    x, y = W.batch(0, 1, 3)
    parts = [W.rows(0, m, 3) for m in range(3)]
    # Reference: sum the per-task gradients of the micro-batches by hand, MGDA on their Gram.
    J = 0
    head_grad = 0
    for part in parts:
        _, outputs = net(x[part])
        losses = W.task_losses(outputs, y[part])
        J = J + _per_task(losses, trunk)
        head_grad = (
            head_grad
            + torch.cat([g.reshape(-1) for g in torch.autograd.grad(sum(losses), heads)]).numpy()
        )
    w = solvers.mgda(gram=J @ J.T).weights
    agg = Aggregator("mgda", distributed="off")
    with agg.accumulate():
        for part in parts[:2]:
            info = W.step(agg, net, x[part], y[part])
            assert info.accumulated is True
            assert info.weights is None and info.gram is None
            assert all(p.grad is None for p in trunk), "a trunk .grad was written inside"
    info = W.step(agg, net, x[parts[2]], y[parts[2]])
    assert info.accumulated is False
    np.testing.assert_allclose(info.weights, w, atol=1e-9)
    np.testing.assert_allclose(info.gram, J @ J.T, rtol=1e-9)
    assert_rel(W.flat(p.grad for p in trunk), w @ J, rel=1e-9, what="trunk")
    assert_rel(W.flat(p.grad for p in heads), head_grad, rel=1e-9, what="heads")
    # Solving each micro-batch on its own (no accumulate()) is another direction.
    per_micro = 0
    for part in parts:
        _, outputs = net(x[part])
        Jm = _per_task(W.task_losses(outputs, y[part]), trunk)
        per_micro = per_micro + solvers.mgda(gram=Jm @ Jm.T).weights @ Jm
    assert np.abs(per_micro - w @ J).max() > 1e-3 * np.abs(w @ J).max()


@pytest.mark.parametrize("method", ["dwa", "gradnorm", "uncertainty"])
def test_accumulate_refuses_loss_weightings(method):
    options = {"task_types": ["regression"] * 2} if method == "uncertainty" else None
    agg = Aggregator(method, options=options)
    with pytest.raises(ValueError, match="loss weighting"), agg.accumulate():
        pass


def test_accumulate_refuses_representation_mode():
    agg = Aggregator("mgda", mode="representation")
    with pytest.raises(ValueError, match="representation"), agg.accumulate():
        pass


def test_accumulate_blocks_do_not_nest():
    agg = Aggregator("mgda")
    with agg.accumulate(), pytest.raises(RuntimeError), agg.accumulate():
        pass
