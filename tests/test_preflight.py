"""The config options a command line picks are checked before Hydra reads them: one line for each mistake."""

from pathlib import Path

import pytest

from src.checks.command_line import command_line_problems
from src.config.resolvers import PROJECT_ROOT


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    for group, name, text in [
        ("model", "mlp", "_target_: x\n"),
        ("model", "cnn", "_target_: y\n"),
        ("experiment", "good", "# @package _global_\ntrainer:\n  max_epochs: 1\n"),
        ("experiment", "commented", "# My experiment.\n\n#  @package  _global_\ntrainer:\n  max_epochs: 1\n"),
        ("experiment", "late_header", "trainer:\n  max_epochs: 1\n# @package _global_\n"),
        ("experiment", "no_package", "trainer:\n  max_epochs: 1\n"),
        ("experiment", "bad_yaml", "# @package _global_\ntrainer:\n  max_epochs: [1\n"),
    ]:
        (tmp_path / group).mkdir(exist_ok=True)
        (tmp_path / group / f"{name}.yaml").write_text(text)
    return tmp_path


def test_existing_options_and_plain_values_pass(config_dir: Path) -> None:
    (config_dir / "hydra" / "launcher").mkdir(parents=True)
    args = [
        "model=mlp",
        "experiment=good,commented",
        "seed=1",
        "model.width=3",
        "hydra/launcher=joblib",
        "-m",
    ]  # a plugin's
    assert command_line_problems(args, config_dir) == []


def test_missing_option_names_the_closest_and_every_option(config_dir: Path) -> None:
    assert command_line_problems(["model=mpl"], config_dir) == [
        "model=mpl is not an option of model; did you mean model=mlp? (options: cnn, mlp)"
    ]
    assert command_line_problems(["model=cnn,transformer"], config_dir) == [
        "model=transformer is not an option of model (options: cnn, mlp)"
    ]


@pytest.mark.parametrize("name", ["no_package", "late_header"])
def test_experiment_without_the_global_package_line_is_refused_with_the_fix(config_dir: Path, name: str) -> None:
    [problem] = command_line_problems([f"experiment={name}"], config_dir)
    assert problem == (
        f"{config_dir / 'experiment' / f'{name}.yaml'} does not start with '# @package _global_': without it its "
        "settings land under experiment.* and are ignored; add that line at the top"
    )


def test_bad_yaml_is_one_line_with_the_file_and_line(config_dir: Path) -> None:
    [problem] = command_line_problems(["experiment=bad_yaml"], config_dir)
    assert problem.startswith(f"{config_dir / 'experiment' / 'bad_yaml.yaml'}, line 4: not valid YAML: ")
    assert "\n" not in problem


def test_options_of_a_config_dir_added_on_the_command_line_are_found_and_checked(
    config_dir: Path, tmp_path: Path
) -> None:
    mine = tmp_path / "mine"
    (mine / "hparams_search").mkdir(parents=True)
    (mine / "hparams_search" / "small.yaml").write_text("# @package _global_\nseed: 1\n")
    (mine / "model").mkdir()
    (mine / "model" / "wide.yaml").write_text("width: [1\n")
    assert command_line_problems(["--config-dir", str(mine), "hparams_search=small", "model=mlp"], config_dir) == []
    assert command_line_problems([f"--config-dir={mine}", "hparams_search=small"], config_dir) == []
    assert command_line_problems([f"-cd={mine}", "hparams_search=small"], config_dir) == []
    [problem] = command_line_problems(["-cd", str(mine), "model=wide"], config_dir)
    assert problem.startswith(f"{mine / 'model' / 'wide.yaml'}, line 2: not valid YAML")
    assert command_line_problems(["-cd", str(mine), "model=wid"], config_dir) == [
        "model=wid is not an option of model; did you mean model=wide? (options: cnn, mlp, wide)"
    ]


def test_options_only_hydra_can_enumerate_or_find_are_left_to_it(config_dir: Path) -> None:
    assert command_line_problems(["-m", "model=glob(*)"], config_dir) == []
    assert command_line_problems(["hydra.searchpath=[file:///elsewhere]", "model=other"], config_dir) == []
    assert command_line_problems(["--config-path", "/elsewhere", "model=other"], config_dir) == []
    assert command_line_problems(["model=other"], config_dir) != []  # the same option, checked without them


def test_a_group_set_to_null_points_at_none_or_lists_the_options(config_dir: Path) -> None:
    options = ", ".join(sorted(p.stem for p in (config_dir / "model").glob("*.yaml")))
    expected = f"model=null is not an option of model; pick one of {options}"
    assert command_line_problems(["model=null"], config_dir) == [expected]
    assert command_line_problems(["logger=null"], PROJECT_ROOT / "configs") == [
        "logger=null is not an option of logger; logger=none turns it off"
    ]
