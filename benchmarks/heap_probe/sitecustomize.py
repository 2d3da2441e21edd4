"""Where the operator's heap sits, from inside the process: put this directory on
PYTHONPATH with HEAP_PROBE=<file> set, and every Python process started so (scale.py's
operator among them) that runs `deskfleet` appends, every 10 s, its pymalloc block count,
VmRSS and VmHWM (KiB) to <file>.

HEAP_PROBE_TRACE=1 also runs tracemalloc (12 frames; slow: use at 2x, not 10x) and dumps
a snapshot to <file>.snap every 30 s, read with `tracemalloc.Snapshot.load`.
HEAP_PROBE_COLLECT=1 runs a full `gc.collect()` before each line, to see whether cyclic
garbage holds memory. A measuring aid for benchmarks, never imported by the operator:

    PYTHONPATH=benchmarks/heap_probe HEAP_PROBE=/tmp/heap.txt \\
        .venv/bin/python benchmarks/scale.py --pools 100 --apps 2000 --policies 400 --runs 1
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
import tracemalloc

OUT = os.environ.get("HEAP_PROBE")


def _probe(out_path: str) -> None:
    time.sleep(2)  # the command line is complete by now
    with open("/proc/self/cmdline", "rb") as cmdline:
        if b"deskfleet" not in cmdline.read():
            tracemalloc.stop()
            return
    tick = 0
    with open(out_path, "a") as out:
        while True:
            time.sleep(10)
            tick += 1
            collected = gc.collect() if os.environ.get("HEAP_PROBE_COLLECT") else None
            with open("/proc/self/status") as status:
                kib = [line.split()[1] for line in status
                       if line.startswith(("VmRSS", "VmHWM"))]
            out.write(f"{time.strftime('%H:%M:%S')} blocks={sys.getallocatedblocks()} "
                      f"collected={collected} rss_hwm_kib={' '.join(kib)}\n")
            out.flush()
            if tracemalloc.is_tracing() and tick % 3 == 0:
                tracemalloc.take_snapshot().dump(out_path + ".snap")


if OUT:
    if os.environ.get("HEAP_PROBE_TRACE"):
        tracemalloc.start(12)
    threading.Thread(target=_probe, args=(OUT,), daemon=True).start()
