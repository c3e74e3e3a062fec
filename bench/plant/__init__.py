"""Reference-plant benchmark and soak: the whole agent, as a user runs it, measured from outside.

Run by hand (``make bench [SECONDS=N] [COMPARE=bench/results/X.csv]``)::

    .venv/bin/python -m bench.plant [--seconds 60 | --soak 600] [--label NAME] [--compare OLD.csv]
                                    [--profile] [--tasks] [--config examples/reference-plant.toml]

Starts a broker (mosquitto on a free port, else the embedded one) and the plant simulator
(``edge-agent plantsim``: the simulated PLCs, IIO accelerometers and serial instruments of the config),
writes a temporary copy of the config (broker URL, simulator addresses, a fresh state_dir, the system
instance's per-instance counters on), subscribes to ``#``, then runs ``edge-agent run -c COPY`` as a
child process for the given time, samples it every second from /proc (per thread from
``task/*/schedstat``, named by ``task/*/comm``), stops it with SIGTERM and prints one table. The
figures are also written to ``bench/results/<date>-<label>.csv`` (kept out of git unless
docs/performance.md cites them; ``--compare`` prints the differences against an older one).
``--profile`` samples the agent with py-spy after warm-up and prints the top functions; ``--tasks``
times the agent's event-loop callbacks and lane jobs from inside (:mod:`.task_cpu`).

The modules, one job each: :mod:`.config_copy` (the config and the simulator), :mod:`.subscriber`
(what reaches the broker), :mod:`.agent_process` (the agent as a child process), :mod:`.profiler`,
:mod:`.process_figures` and :mod:`.traffic_figures`, :mod:`.report` (table, CSV, comparison) and
:mod:`.measure` (one run from start to table).
"""

from bench.plant.measure import DEFAULT_CONFIG, measure
from bench.plant.report import RESULTS, fmt

__all__ = ["DEFAULT_CONFIG", "RESULTS", "fmt", "measure"]
