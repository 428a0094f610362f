"""Start-up without the garbage collector walking the imports.

Importing Lightning, torch and Hydra creates millions of long-lived objects; the cyclic collector runs over all of
them again and again while they are created, and once more at exit: about 2 s of a 6 s one-batch run on a small CPU.
Entry points call ``gc.disable()`` before their imports and :func:`imports_done` after them: the objects made so far
are moved out of the collector's sight (``gc.freeze``, which also keeps forked data-loader workers from copying
them), and collection runs as usual for everything the run creates.
"""

import gc


def imports_done() -> None:
    gc.freeze()
    gc.enable()
