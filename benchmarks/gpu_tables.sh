#!/usr/bin/env bash
# Every GPU number of the README's speed sections, one part at a time (each fits in a few minutes on one H100):
#   bash benchmarks/gpu_tables.sh /path/to/data speedruns   # time to accuracy of both speedruns, SEEDS=5 seeds
#   bash benchmarks/gpu_tables.sh /path/to/data switches    # cifar10_speedrun with each speed switch undone
#   bash benchmarks/gpu_tables.sh /path/to/data overhead    # seconds per epoch of both engines; host reads per step
#   bash benchmarks/gpu_tables.sh /path/to/data precision   # ResNet-18 images/s: 32-true vs 16-mixed vs bf16-mixed
#   bash benchmarks/gpu_tables.sh /path/to/data long        # cifar10_resnet (95%) and mnist_cnn (99.5%), one seed each
# With no part named, all of them; run inside the project's environment. The hardware, versions and date come first.
# QUICK=1 runs every command on a few batches, one seed, no warm-up, on the CPU unless ACCELERATOR says otherwise:
# a check that each part still runs (the suite does it on tiny data), not a measurement. EXTRA adds overrides to
# every training command (the suite's: data.verify_checksums=false data.val_size=10 for its tiny fake files).
set -euo pipefail
data=${1:?usage: bash benchmarks/gpu_tables.sh DATA_DIR [speedruns|switches|overhead|precision|long ...]}
shift
if (($#)); then parts=("$@"); else parts=(speedruns switches overhead precision long); fi
python=${PYTHON:-python}
read -r -a extra <<<"${EXTRA:-}"
if [ "${QUICK:-0}" = 1 ]; then
  accelerator=${ACCELERATOR:-cpu}
  seeds=1
  switch_seeds=1
  quick=(--quick --warmup 0)  # time_to_accuracy and precision_throughput
  epochs=(--batches 3 --epochs 1 --repeats 1)  # engine_epoch_time
  syncs=(--short 1 --long 3)  # host_syncs
else
  accelerator=${ACCELERATOR:-gpu}
  seeds=${SEEDS:-5}
  switch_seeds=2
  quick=()
  epochs=(--batches 1000)
  syncs=()
fi
# cifar10_speedrun with one switch undone at a time: what each is worth
switches=(
  "model.whiten_stem=false callbacks.freeze_whitening_bias=null"  # the conv stem has no bias to freeze
  "module.test_time_shift=0"
  "model.channels_last=false"
  "optimizer.fused=false"
  "trainer.benchmark=false"
  "data.val_size=2000"  # 2,000 training images held out, validated once at the end
  "callbacks.stop_on_non_finite={_target_:src.callbacks.StopOnNonFinite}"  # one host read per 100 steps
)

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "no nvidia-smi: no GPU?"
"$python" -c "import torch, lightning as L; print('torch', torch.__version__, torch.version.cuda, 'lightning', L.__version__)"
date -u +%Y-%m-%dT%H:%MZ

tta() {
  "$python" -m benchmarks.time_to_accuracy paths.data_dir="$data" trainer.accelerator="$accelerator" "${extra[@]}" \
    "${quick[@]}" "$@"  # last: --each takes every argument after it
}
for part in "${parts[@]}"; do
  echo "=== $part"
  case $part in
    speedruns)
      tta experiment=mnist_speedrun --seeds "$seeds" --target 99
      tta experiment=cifar10_speedrun --seeds "$seeds" --target 94
      if [ "${QUICK:-0}" = 1 ]; then
        echo "quick: the compiled speedrun is left out (compiling takes minutes on a CPU; tests compile a small net)"
      else
        tta experiment=cifar10_speedrun --seeds "$seeds" --target 94 model.compile=true
      fi ;;
    switches)
      each=()
      for switch in "${switches[@]}"; do each+=("$switch ${extra[*]}"); done  # EXTRA wins over a switch
      tta experiment=cifar10_speedrun --seeds "$switch_seeds" --target 94 --each "${each[@]}" ;;
    overhead)
      "$python" -m benchmarks.engine_epoch_time --data-dir "$data" --experiments cifar10_speedrun mnist_speedrun \
        "${epochs[@]}" --extra trainer.accelerator="$accelerator" "${extra[@]}"
      "$python" -m benchmarks.host_syncs --data-dir "$data" --experiments cifar10_speedrun "${syncs[@]}" \
        --extra trainer.accelerator="$accelerator" "${extra[@]}" ;;
    precision)
      "$python" -m benchmarks.precision_throughput "${quick[@]}"
      "$python" -m benchmarks.precision_throughput "${quick[@]}" model.channels_last=true trainer.benchmark=true ;;
    long)
      tta experiment=cifar10_resnet --seeds 1 --warmup 0 --target 95
      tta experiment=mnist_cnn --seeds 1 --warmup 0 --target 99.5 ;;
    *) echo "unknown part $part: use speedruns, switches, overhead, precision or long" >&2; exit 2 ;;
  esac
done
