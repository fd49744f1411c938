"""Run every benchmark (``make bench``), each in a fresh process, and record the run in docs/benchmarks.md.

    .venv-bench/bin/python -m bench                      # all of them, in order
    .venv-bench/bin/python -m bench sse latency          # some of them (sse, latency, density, requests, burst, scale)

Each benchmark prints its table and writes its own section of ``docs/benchmarks.md`` with the machine it ran
on; this runner adds the total time and the machine to the document's "last run" block.
"""

from __future__ import annotations

import subprocess
import sys
import time

from bench._common import ROOT, machine_line, write_section

BENCHMARKS = {
    "sse": "bench.sse_throughput",
    "latency": "bench.completion_latency",
    "density": "bench.triggerer_density",
    "requests": "bench.request_overhead",
    "burst": "bench.stalled_stream",
    # the production topology (Postgres, Celery, two triggerers; Prefect server and workers): the longest
    "scale": "bench.scale_topology",
}


def main(argv: list[str]) -> int:
    """Run the named benchmarks (all by default); stop at the first that fails."""
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}", file=sys.stderr)
        return 2
    machine = machine_line()
    started = time.monotonic()
    for name in names:
        code = subprocess.call([sys.executable, "-m", BENCHMARKS[name]], cwd=ROOT)
        if code != 0:
            print(f"benchmark {name} failed (exit {code})", file=sys.stderr)
            return code
    took = time.monotonic() - started
    if names == list(BENCHMARKS):
        write_section("run", f"Last full run (`make bench`): {took / 60:.1f} min.\n\n{machine}")
    print(f"\nall done in {took / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
