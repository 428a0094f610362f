"""Every check a run passes before it trains, in the order they run. Each refusal is one line that names the value
and one that works, before anything is trained, and the run's record says failed (``result.json``). Training code
calls none of them: a reader who skips this package misses nothing about training. (Beside them, the objects the
config builds refuse their own bad arguments, such as a model that does not fit its data, and train.py claims the
run directory, refusing one a live run holds.)

Four moments, each the earliest at which its facts are known:

1. the command line, in train.py's first lines, before torch is imported (:mod:`.command_line`): a mistyped
   config option, or an experiment file without ``# @package _global_``, is refused in a second;
2. the run directory, in Hydra's callback before Hydra creates it (:mod:`.output_dir`): unwritable, or another
   folder's files;
3. the composed config (:func:`.start_up.check_config`, which lists them in order): first keys and types against
   each ``_target_``'s signature and ranges (:mod:`.schema`), then the engine, devices and precision
   (:mod:`.devices`), single values (:mod:`.values`), the metrics named and the way they are followed
   (:mod:`.metrics`), loop limits (:mod:`.loop_limits`), GPU leases of a sweep, and last what the hand-written
   loop implements (:mod:`.scratch_limits`);
4. what only the data and the network tell (:func:`.start_up.check_built`): batch counts, free disk space, the
   checkpoint to resume from (:mod:`.resumable`).

When Hydra itself refuses a command line, :mod:`.suggest` names the closest keys. This file imports nothing, so
the first moment runs before torch is imported.
"""
