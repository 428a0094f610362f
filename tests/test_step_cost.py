"""ATen ops per training step of each engine, held against a bare loop of the same model, optimizer, loss and data
(benchmarks/step_cost.py): a change that adds work to every step fails here. The ceilings are the multiples
measured on 2026-12-04 (torch 2.14.1, CPU, fp32 and bf16 autocast), rounded up; the aim is 1.1x."""

from pathlib import Path

import pytest

from benchmarks.step_cost import RECIPES, per_step
from train import ENGINES

ON_FAKE_DATA = ["data.verify_checksums=false", "data.val_size=2", "data.batch_size=4"]
CEILINGS = {  # engine ops per step / the bare loop's
    ("headline", "lightning"): 1.67,
    ("headline", "scratch"): 1.52,
    ("speedrun", "lightning"): 1.46,
    ("speedrun", "scratch"): 1.41,
}


@pytest.mark.parametrize("recipe", ["headline", "speedrun"])
def test_engine_ops_per_step_stay_within_the_measured_multiple_of_a_bare_loop(
    recipe: str, fake_data: Path, tmp_path: Path
) -> None:
    where = [f"paths.data_dir={fake_data}", f"paths.cache_dir={tmp_path / 'cache'}", "trainer.accelerator=cpu"]
    overrides = [*RECIPES[recipe], *where, *ON_FAKE_DATA]
    bare = sum(per_step("bare", overrides, tmp_path, short=2, long=12)[0].values())
    assert bare > 100  # a forward, a backward and an optimizer step were counted
    for engine in ENGINES:
        ops = sum(per_step(engine, overrides, tmp_path, short=2, long=12)[0].values())
        assert ops / bare <= CEILINGS[(recipe, engine)], f"{engine}: {ops:g} ops per step against {bare:g}"
