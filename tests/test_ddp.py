"""Two CPU processes (gloo) equal one process on the same global batch, for both engines, in one run directory."""

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from torchmetrics import CatMetric, MaxMetric, MeanMetric, MetricCollection

from src.config import builders
from src.config.resolvers import PROJECT_ROOT
from src.engines.distributed import peers_watched
from src.errors import PeerLostError
from src.stop_and_resume.partial_epoch import gathered_state_dict
from tests.conftest import read_result
from train import train

COMMON = [
    "data=xor_clouds",
    "model=mlp",
    "trainer.max_epochs=2",
    "trainer.accelerator=cpu",
    "print_config=false",
    "callbacks.progress_bar=null",
    "logger=csv",
]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
LAUNCH = {
    "lightning": [sys.executable, "train.py", "engine=lightning", "trainer=ddp", "trainer.devices=2"],
    "scratch": [*TORCHRUN, "train.py", "engine=scratch"],
}
# The same runs with a SIGTERM sent to itself by rank 0 (Lightning's launcher passes it on) or by every process
# (torchrun's), in the middle of their second epoch (tests/phase_hooks.py).
SIGTERM_MID_EPOCH = ["-m", "tests.phase_hooks", "training", "SIGTERM"]
LAUNCH_SIGNALLED = {
    "lightning": [sys.executable, *SIGTERM_MID_EPOCH, "engine=lightning", "trainer=ddp", "trainer.devices=2"],
    "scratch": [*TORCHRUN, *SIGTERM_MID_EPOCH, "engine=scratch"],
}


def rank_processes(marker: str) -> dict[int, int]:
    """{rank: pid} of the running processes whose command line holds ``marker`` and that know their rank."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or marker not in (proc / "cmdline").read_text():
                continue
            env = dict(item.split("=", 1) for item in (proc / "environ").read_text().split("\0") if "=" in item)
        except OSError:
            continue
        if "MASTER_PORT" in env and ("RANK" in env or "LOCAL_RANK" in env):
            found[int(env.get("RANK", env.get("LOCAL_RANK")))] = int(proc.name)
    return found


def train_metrics_by_epoch(csv_file: Path) -> dict[int, list[float]]:
    """{epoch: [train/loss, train/acc]} from a CSV log."""
    with csv_file.open() as rows_file:
        rows = [row for row in csv.DictReader(rows_file) if row.get("train/loss")]
    return {int(float(row["epoch"])): [float(row["train/loss"]), float(row["train/acc"])] for row in rows}


LONGER = ["data.n=2000", "trainer.max_epochs=4"]
# Lightning's runs also hold the first layer at its initial weights (FreezeAfter from epoch 0): the dropped gradients
# must keep DDP's reducer in step, and the resumed run must keep it frozen.
FREEZE = "+callbacks.freeze={_target_: src.callbacks.FreezeAfter, parameters: [net.net.1.weight], epochs: 0}"


@pytest.mark.skipif(not Path("/proc/self/environ").is_file(), reason="finds the processes of each rank in /proc")
@pytest.mark.parametrize("engine", ["lightning", "scratch"])
def test_two_process_ddp_killed_stops_at_once_and_resumes_to_what_one_process_trains(
    make_cfg, tmp_path: Path, engine: str
) -> None:
    """Two processes of batch 16 against one of batch 32; one of the two is killed after the first epoch."""
    extra = [FREEZE] if engine == "lightning" else []
    logs = tmp_path / "ddp"
    command = [*LAUNCH[engine], *COMMON, *LONGER, *extra, "data.batch_size=16", f"paths.log_dir={logs}"]
    output = tmp_path / "killed.log"
    with output.open("w") as sink:
        run = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not list(logs.glob("train/runs/*/checkpoints/last.ckpt")):  # an epoch done
        assert time.monotonic() < deadline and run.poll() is None, "no epoch finished"
        time.sleep(0.05)
    os.kill(rank_processes(str(logs))[1], signal.SIGKILL)
    started = time.monotonic()
    run.wait(timeout=60)  # the survivors notice the lost peer: no hang
    assert run.returncode != 0 and time.monotonic() - started < 60
    [first] = (logs / "train" / "runs").iterdir()  # every process wrote into one run directory
    assert json.loads((first / "result.json").read_text())["status"] != "completed"
    # the survivor says so in one line (torchrun, which starts the scratch engine's processes, adds its own report)
    said = output.read_text()
    noticed = "another process of this 2-process run stopped, or a collective failed (" in said
    # torchrun stops the survivors with SIGTERM once it sees a worker die: a survivor it reaches before the lost peer
    # does says that instead, in its own one line
    told = engine == "scratch" and bool(re.search(r"SIGTERM(: stopped at once| at epoch)", said))
    assert noticed or told, said[-3000:]
    assert "run the same command with resume=auto" in said or "To resume, run: " in said
    assert engine == "scratch" or "Traceback" not in said, said[-3000:]

    # Resumed, then stopped by SIGTERM in the middle of an epoch (each process holding its part of the epoch's
    # metrics), then resumed again.
    arguments = command[len(LAUNCH[engine]) :]
    signalled = subprocess.run(
        [*LAUNCH_SIGNALLED[engine], *arguments, "resume=auto"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert re.search(r"SIGTERM at epoch \d, step \d+: saved", signalled.stdout + signalled.stderr), signalled.stderr
    done = subprocess.run([*command, "resume=auto"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    resumed_dir = max(p.parent for p in logs.glob("train/runs/*/result.json"))  # the newest: runs sort by time
    resumed = json.loads((resumed_dir / "result.json").read_text())
    assert resumed["status"] == "completed" and resumed["resumed_from"].startswith(str(logs))
    single_cfg = make_cfg(f"engine={engine}", *COMMON, *LONGER, *extra, "data.batch_size=32")
    train(single_cfg)
    single = read_result(single_cfg)
    assert resumed["global_step"] == single["global_step"] and resumed["epochs"] == single["epochs"] == 4
    # Equal test metrics also mean every test sample was counted exactly once across the two processes.
    for name in ("train/loss", "val/loss", "val/acc", "test/loss", "test/acc"):
        assert resumed["metrics"][name] == pytest.approx(single["metrics"][name], rel=1e-4), name
    # Every epoch's training metrics too, the one interrupted mid-way included (its history continues in the log).
    by_epoch = [
        train_metrics_by_epoch(Path(r) / "csv" / "metrics.csv") for r in (single_cfg.paths.output_dir, resumed_dir)
    ]
    assert list(by_epoch[1]) == list(by_epoch[0]) == [0, 1, 2, 3]
    for epoch, values in by_epoch[0].items():
        assert by_epoch[1][epoch] == pytest.approx(values, rel=1e-4), epoch
    weights = [
        torch.load(Path(r) / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
        for r in (single_cfg.paths.output_dir, resumed_dir)
    ]
    for name, value in weights[0].items():
        torch.testing.assert_close(weights[1][name], value, rtol=1e-4, atol=1e-6)
    if extra:
        L.seed_everything(single_cfg.seed)  # as train.py does before it builds the network
        initial = builders.build_model(single_cfg).state_dict()
        torch.testing.assert_close(weights[1]["net.net.1.weight"], initial["net.1.weight"], rtol=0, atol=0)
        assert not torch.equal(weights[1]["net.net.3.weight"], initial["net.3.weight"])


def test_two_machines_on_localhost_equal_one_process(make_cfg, tmp_path: Path) -> None:
    """What the README's several-machines instructions do, with one gloo process per "machine"."""
    single_cfg = make_cfg("engine=lightning", *COMMON, "data.batch_size=32")
    train(single_cfg)
    logs = tmp_path / "nodes"
    command = [*LAUNCH["lightning"], "trainer.devices=1", "trainer.num_nodes=2", *COMMON, "data.batch_size=16"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rendezvous = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2"}
    machines = [
        subprocess.Popen(
            [*command, f"paths.log_dir={logs}"],
            cwd=PROJECT_ROOT,
            env={**os.environ, **rendezvous, "NODE_RANK": str(node)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for node in (0, 1)
    ]
    outputs = [machine.communicate(timeout=300)[0] for machine in machines]
    assert [m.returncode for m in machines] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    [record] = [json.loads(p.read_text()) for p in logs.glob("train/runs/*/result.json")]  # machine 0 writes it
    single = read_result(single_cfg)
    for name in ("train/loss", "val/loss", "test/loss", "test/acc"):
        assert record["metrics"][name] == pytest.approx(single["metrics"][name], rel=1e-4), name


@pytest.mark.parametrize(
    ("world_size", "error", "becomes_one_line"),
    [
        (2, RuntimeError("[gloo/transport/tcp/pair.cc:545] Read error: Connection reset by peer"), True),
        (2, torch.distributed.DistNetworkError("the store is gone"), True),
        (2, RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
        (1, RuntimeError("Connection reset by peer"), False),
    ],
    ids=["gloo peer gone", "distributed error", "other error", "one process"],
)
def test_only_a_lost_peer_of_a_multi_process_run_becomes_one_line(world_size, error, becomes_one_line) -> None:
    expected = PeerLostError if becomes_one_line else type(error)
    with pytest.raises(expected) as raised, peers_watched(world_size):
        raise error
    assert (raised.value is error) != becomes_one_line


def _gather_partial_epoch(rank: int, init_file: str, results: Any) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    metrics = MetricCollection({"mean": MeanMetric(), "kept": CatMetric(), "top": MaxMetric()})
    metrics.persistent(True)  # as the module's training metrics are
    metrics.update(torch.tensor([1.0, 2.0]) * (rank + 1))  # rank 0: 1, 2; rank 1: 2, 4
    saved = gathered_state_dict(metrics, prefix="train_metrics.")
    results[rank] = {key: value if isinstance(value, list) else value.tolist() for key, value in saved.items()}
    resumed = MetricCollection({"mean": MeanMetric(), "kept": CatMetric(), "top": MaxMetric()})
    resumed.persistent(True)
    resumed.load_state_dict({key.removeprefix("train_metrics."): value for key, value in saved.items()})
    resumed.update(torch.tensor([3.0]))  # a list state must still take updates
    results[f"computed{rank}"] = {name: value.tolist() for name, value in resumed.compute().items()}
    torch.distributed.destroy_process_group()


def test_a_partial_epoch_is_saved_with_every_process_s_metric_states_reduced_lists_kept_as_lists(
    tmp_path: Path,
) -> None:
    results = torch.multiprocessing.Manager().dict()
    torch.multiprocessing.spawn(_gather_partial_epoch, args=(str(tmp_path / "init"), results), nprocs=2)
    assert results[0]["train_metrics.mean.mean_value"] == 9.0 and results[0]["train_metrics.mean.weight"] == 4.0
    assert [t.tolist() for t in results[0]["train_metrics.kept.value"]] == [[1.0, 2.0, 2.0, 4.0]]
    assert results[0]["train_metrics.top.max_value"] == 4.0
    # taken back on both ranks here (a run does so on rank 0 alone), then reduced again by compute: 9 + 3 on each
    assert results["computed0"] == results["computed1"]
    assert results["computed0"] == {"mean": pytest.approx(24 / 10), "kept": [1, 2, 2, 4, 3] * 2, "top": 4}
