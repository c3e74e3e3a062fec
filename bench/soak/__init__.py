"""A soak that resembles a week (issue 29, item 5): the reference plant for an hour with faults
switched on and off, broker outages, wall-clock steps and restarts, measured against the targets.

Run by hand (a bench, never CI; un-niced, on a quiet machine)::

    .venv/bin/python -m bench.soak [--seconds 3600] [--no-clock] [--label NAME]

The scenario (:mod:`.scenario`, times on a 1-hour line, scaled for a shorter run): bearing faults
on three accelerometers (plantsim), a PLC silent or busy four times, thermocouple open and short
circuits (in the config: those chips are simulated inside the agent), four broker outages (one of
10 minutes, faults inside it), the agent's wall clock stepped +3 h, -1 h and -2 h under libfaketime
(its monotonic clock real), three ``cmd restart`` through the broker, one config push, and one
SIGTERM and restart of the whole agent. The broker stays up: the agent reaches it through a relay
(:mod:`.proxy`) that drops its connection and refuses new ones, while the bench's subscriber on
``#`` stays connected and sees everything the agent delivers afterwards.

Every second the agent's CPU, RSS and ``/proc/PID/io`` ``write_bytes``; every 10 s PSS and USS;
every minute the load average and the simulator's IIO counters. The figures (:mod:`.figures`):
CPU mean and p95, memory growth and slope per agent process, bytes written per day in steady,
outage and drain phases, seq gaps and repeats (order-independent), what each outage delivered
afterwards, IIO scans lost, every event judged against the scenario (an event it does not explain
is a finding), the answers to commands, and the agent's WARNING lines. Results:
``bench/results/<date>-<label>.csv`` (metric,value,unit) and ``...-timeline.csv`` (each minute,
action and event); the agent's log stays in /tmp.
"""
