"""Metrics named anywhere in a config (monitors, the optimized metric) exist in this run and improve the way they
are followed."""

from omegaconf import DictConfig
from torchmetrics import MetricCollection

from src.config.builders import build_loss_and_metrics
from src.errors import ConfigError


def logged_metric_names(cfg: DictConfig) -> list[str]:
    """What a run logs per stage (``train/``, ``val/``, ``test/``): its loss and its metrics, built as the run will
    build them, so a loss or metric that does not fit is refused here too."""
    return ["loss", *build_loss_and_metrics(cfg.module).metrics.keys()]


def monitored_metrics(cfg: DictConfig) -> dict[str, str]:
    """Every key that names a metric to follow during fit, with the metric it names."""
    keys = {"monitor": cfg.monitor}
    for name, callback in (cfg.get("callbacks") or {}).items():
        if callback and callback.get("monitor"):
            keys[f"callbacks.{name}.monitor"] = callback.monitor
    if (cfg.get("scheduler") or {}).get("monitor"):
        keys["scheduler.monitor"] = cfg.scheduler.monitor
    return keys


def check_metric_names(cfg: DictConfig) -> None:
    """A metric named anywhere must be one this task logs in a stage this run has: caught now, not after the first
    epoch (a monitor) or after the whole run (``optimized_metric``)."""
    names = logged_metric_names(cfg)
    fit_choices = [f"{stage}/{name}" for stage in ("val", "train") for name in names]
    test_choices = [f"test/{name}" for name in names]
    keys = {**monitored_metrics(cfg), "optimized_metric": cfg.optimized_metric}
    for key, metric in keys.items():
        choices = fit_choices + (test_choices if key == "optimized_metric" and cfg.test else [])
        if metric in choices:
            continue
        why = " (test/ metrics exist only with test=true)" if metric in test_choices else ""
        raise ConfigError(f"{key}={metric!r} is not a metric this run logs{why}; choose one of {choices}")


def improves(metric: str, metrics: MetricCollection) -> str | None:
    """``min`` or ``max`` for a logged metric (``val/acc``), from its torchmetrics ``higher_is_better``; None when
    the metric does not say."""
    name = metric.split("/", 1)[-1]
    if name == "loss":
        return "min"
    higher = getattr(metrics[name], "higher_is_better", None) if name in metrics else None
    return None if higher is None else ("max" if higher else "min")


def followed_directions(cfg: DictConfig, sweeping: bool) -> dict[str, tuple[str, str, str]]:
    """Each key that names a metric to follow -> (the metric, the key of its direction, that direction). In a sweep,
    the report and Optuna rank ``optimized_metric`` by ``monitor_mode``; a single run only returns it."""
    followed = {"monitor": (cfg.monitor, "monitor_mode", cfg.monitor_mode)}
    if sweeping:
        followed["optimized_metric"] = (cfg.optimized_metric, "monitor_mode", cfg.monitor_mode)
    for name, callback in (cfg.get("callbacks") or {}).items():
        if callback and callback.get("monitor") and callback.get("mode"):
            followed[f"callbacks.{name}.monitor"] = (callback.monitor, f"callbacks.{name}.mode", callback.mode)
    scheduler = cfg.get("scheduler") or {}
    if scheduler.get("monitor") and (scheduler.get("scheduler") or {}).get("mode"):
        followed["scheduler.monitor"] = (scheduler.monitor, "scheduler.scheduler.mode", scheduler.scheduler.mode)
    return followed


def check_metric_directions(cfg: DictConfig, sweeping: bool) -> None:
    """A metric followed the wrong way round trains silently and keeps its worst epoch as the best: refused."""
    metrics = build_loss_and_metrics(cfg.module).metrics
    for key, (metric, mode_key, mode) in followed_directions(cfg, sweeping).items():
        wanted = improves(metric, metrics)
        if wanted is None or wanted == mode:
            continue
        way = "rises" if wanted == "max" else "falls"
        if key == "optimized_metric":
            raise ConfigError(
                f"optimized_metric={metric} improves as it {way}, but sweeps and Optuna rank it by monitor_mode={mode} "
                f"(how monitor={cfg.monitor} improves), the worst run first; optimize a metric that improves as "
                "monitor does, or monitor one that improves as this one does"
            )
        unset = " (monitor_mode follows monitor when left unset)" if mode_key == "monitor_mode" else ""
        raise ConfigError(
            f"{key}={metric} improves as it {way}, but {mode_key}={mode} would keep its worst value as the best; "
            f"set {mode_key}={wanted}{unset}"
        )


def validated_metrics(cfg: DictConfig) -> list[str]:
    """The ``val/`` metrics a callback, the scheduler or the returned metric follows: the run must validate."""
    named = [*monitored_metrics(cfg).values(), cfg.optimized_metric]
    return sorted({m for m in named if m.startswith("val/")})
