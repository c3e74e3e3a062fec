"""The ``edge-agent`` command line."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.agent import __version__

if TYPE_CHECKING:
    from edge_agent.agent.config.layers import PushedLayer
    from edge_agent.agent.config.registry import Registry
    from edge_agent.agent.config.schema import Config

ENV_URL = "EDGE_AGENT_MQTT_URL"
DEFAULT_URL = "mqtt://127.0.0.1:1883"


EX_CONFIG = 78  # sysexits: systemd's RestartPreventExitStatus=78 stops restarting a bad config


def cmd_run(args: argparse.Namespace) -> int:
    from edge_agent.agent.config.layers import APPLIED_FILE, load_effective
    from edge_agent.agent.config.registry import load_registry
    from edge_agent.agent.errors import ConfigError
    from edge_agent.agent.runtime.logging_setup import setup_logging

    os.umask(0o077)  # every file the agent creates (spool, seq store, layer, records, captures): 0600, dirs 0700
    setup_logging(args.log_level or "info")
    log = logging.getLogger("agent")
    reg = load_registry()
    try:
        file_cfg, cfg, layer = load_effective(Path(args.config), reg)
    except ConfigError as exc:
        log.error("invalid config %s (%d error(s)):\n%s", exc.source, len(exc.errors), "\n".join(exc.errors))
        return EX_CONFIG
    setup_logging(args.log_level or cfg.agent.log_level)
    if layer.instances:  # only when a push is really in effect (issue 20 item 3)
        where = Path(file_cfg.agent.state_dir) / APPLIED_FILE
        log.info(
            "running %s with the pushed config version %d on top (%d pushed instance(s), %s)",
            args.config,
            layer.version,
            len(layer.instances),
            where,
        )
    code, stuck = asyncio.run(_serve(cfg, reg, Path(args.config), file_cfg, layer))
    if stuck:
        # a driver call is still stuck in a thread: the spool and seq store are closed, so leave
        # without waiting for it (interpreter shutdown could wait on it)
        from edge_agent.agent.runtime.runtime import hard_exit

        hard_exit(code)
    return code


async def _serve(cfg: Config, reg: Registry, path: Path, file_cfg: Config, layer: PushedLayer) -> tuple[int, bool]:
    """Build the agent on this loop and run it; the exit code, and whether a driver call is stuck."""
    from edge_agent.agent.runtime.bootstrap import build_runtime
    from edge_agent.drivers.named_thread import named_executor

    asyncio.get_running_loop().set_default_executor(named_executor())  # its threads named for top -H
    rt = build_runtime(
        cfg, reg, config_path=path, url_override=os.environ.get(ENV_URL), file_config=file_cfg, layer=layer
    )
    return await rt.run(), bool(rt.lanes.stats()["stuck"])


def cmd_check_config(args: argparse.Namespace) -> int:
    from edge_agent.agent.config.registry import load_registry
    from edge_agent.agent.config.schema import load
    from edge_agent.agent.errors import ConfigError

    reg = load_registry()
    if str(args.config).endswith(".json"):
        return _check_pushed_layer(args.config, reg)
    try:
        cfg = load(args.config, reg)
    except ConfigError as exc:
        print(f"{exc.source}: {len(exc.errors)} error(s)")
        for line in exc.errors:
            print(line)
        return 1
    print(
        f"{args.config}: ok ({len(cfg.instances)} instance(s), agent {cfg.agent_id}, "
        f"config_hash {cfg.hash}, instances_hash {cfg.instances_hash})"
    )
    if args.plan:
        for inst in cfg.instances:
            if inst.driver is not None and inst.driver.plan is not None:
                for line in inst.driver.plan(inst.driver_options):
                    print(f"{inst.name}: {line}")
    return 0


def _check_pushed_layer(path: str, reg: Any) -> int:
    """check-config on a stored pushed layer (state_dir/applied-config.json) or a JSON push file."""
    import json

    from edge_agent.agent.config.layers import stored_layer_errors
    from edge_agent.agent.config.schema import build
    from edge_agent.agent.errors import ConfigError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"{path}: cannot read: {exc}")
        return 1
    unusable = stored_layer_errors(data) if isinstance(data, dict) else []
    if unusable:  # the agent would quarantine it at start: say so here too
        print(f"{path}: {len(unusable)} error(s) (the agent moves such a file aside at start)")
        print("\n".join(unusable))
        return 1
    instances = data.get("instances", []) if isinstance(data, dict) else data
    try:
        cfg = build({"instances": instances}, reg, source=path)
    except ConfigError as exc:
        print(f"{path}: {len(exc.errors)} error(s)")
        print("\n".join(exc.errors))
        return 1
    version = data.get("version", "-") if isinstance(data, dict) else "-"
    print(f"{path}: ok (pushed layer version {version}: {len(cfg.instances)} instance(s))")
    return 0


def _features_note(spec: Any) -> str:
    """`` [write, deadline_s]``: the optional features a driver declares (drivers.contract.DRIVER_FEATURES)."""
    from edge_agent.drivers.contract import driver_features

    features = driver_features(spec)
    return f" [{', '.join(features)}]" if features else ""


def _listing(kind: str, as_json: bool = False) -> int:
    from edge_agent.agent.config.registry import load_registry

    reg = load_registry()
    reg.load_all()
    if as_json:  # options as JSON Schema and declared values (agent/devtools/reference_docs.py)
        import json

        from edge_agent.agent.devtools.reference_docs import listing

        print(json.dumps(listing(reg, kind), indent=2))
        return 0
    specs = reg.plugins if kind == "plugin" else reg.drivers
    for name in sorted(set(specs) | {n for k, n in reg.broken if k == kind}):
        o = reg.origins.get((kind, name))
        src = "built-in" if o and o.builtin else (f"{o.dist} {o.version}" if o else "?")
        if (kind, name) in reg.broken:
            print(f"{name:14} BROKEN   {src:24} {reg.broken[(kind, name)]}")
            continue
        spec = specs[name]
        extra = _features_note(spec) if kind == "driver" else ""
        print(f"{name:14} {(o.version if o else ''):8} {src:24} {spec.description}{extra}")
        for hidden in reg.shadowed.get((kind, name), []):
            print(f"{name:14} SHADOWED {hidden.dist + ' ' + hidden.version:24} ignored: named like {src} {name!r}")
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    from edge_agent.agent.ops.connection import ClientError, resolve
    from edge_agent.agent.ops.tail import tail

    try:
        settings = resolve(args)
    except ClientError as exc:
        raise SystemExit(f"tail: {exc}") from exc
    filters = args.filter or [f"{settings.prefix}/#", "spBv1.0/#"]
    return tail(settings, filters, count=args.count, seconds=args.seconds)


def cmd_demo(args: argparse.Namespace) -> int:
    from edge_agent.agent.devtools.demo import run_demo

    return run_demo(seconds=args.seconds, config=args.config, plain=args.plain, panel=not args.no_panel, keep=args.keep)


def _lazy(module: str, func: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        fn: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), func)
        return fn(args)

    return run


def _client_args(p: argparse.ArgumentParser) -> None:
    from edge_agent.agent.ops.connection import add_args

    add_args(p)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edge-agent",
        description="Plant-floor edge agent: sensors and PLCs "
        "in, machine-health features out over MQTT as MessagePack.",
    )
    p.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser(
        "run", help="run the daemon", description="Run the agent. EDGE_AGENT_MQTT_URL overrides [mqtt] url."
    )
    s.add_argument("-c", "--config", required=True, help="TOML config file")
    s.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="default: [agent] log_level")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("check-config", help="validate a config; exit 1 listing every error with its path")
    s.add_argument("config")
    s.add_argument("--plan", action="store_true", help="also print the read plan (Modbus requests)")
    s.set_defaults(func=cmd_check_config)

    s = sub.add_parser("tail", help="print decoded messages as JSON lines")
    s.add_argument("filter", nargs="*", help="topic filters (default: PREFIX/# and spBv1.0/#)")
    s.add_argument("--count", type=int, help="stop after N messages")
    s.add_argument("--seconds", type=float, help="stop after S seconds")
    _client_args(s)
    s.set_defaults(func=cmd_tail)

    for kind in ("plugin", "driver"):
        s = sub.add_parser(f"{kind}s", help=f"list installed {kind}s")
        s.add_argument("--json", action="store_true", help="specs with options (JSON Schema) and declared values")
        s.set_defaults(func=lambda a, kind=kind: _listing(kind, a.json))

    s = sub.add_parser(
        "unit-addresses", help="print the systemd drop-in allowing a config's hosts outside the private ranges"
    )
    s.add_argument("config")
    s.set_defaults(func=_lazy("edge_agent.agent.config.unit_addresses", "cmd_unit_addresses"))

    s = sub.add_parser("device-groups", help="print the device groups (i2c, spi, gpio...) a config's drivers need")
    s.add_argument("config")
    s.set_defaults(func=_lazy("edge_agent.agent.config.device_groups", "cmd_device_groups"))

    s = sub.add_parser("new", help="write a new driver or plugin package (code, tests, README) to start from")
    s.add_argument("kind", choices=["driver", "plugin"])
    s.add_argument("name", help="e.g. sht3x: the config name (type/plugin), SPEC.name, module edge_sht3x")
    s.add_argument("--bus", choices=["i2c", "spi", "serial", "none"], default="none", help="driver: the hardware bus")
    s.add_argument("--dir", default=".", help="where to create the package folder (default: here)")
    s.set_defaults(func=_lazy("edge_agent.agent.devtools.scaffold", "cmd_new"))

    s = sub.add_parser("demo", help="run a simulated plant end to end: broker, sensors, agent, live view")
    s.add_argument("--seconds", type=float, help="stop after S seconds (default: until Ctrl-C)")
    s.add_argument("--config", help="config to run (default: examples/reference-plant.toml)")
    s.add_argument("--plain", action="store_true", help="plain lines instead of a refreshing table")
    s.add_argument("--no-panel", action="store_true", help="do not start the web panel beside the agent")
    s.add_argument("--keep", metavar="DIR", help="keep the agent's state in DIR between runs (make demo KEEP=1)")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser(
        "plantsim",
        help="serve a config's simulated hardware from outside the agent (PLCs, IIO devices, ptys)",
        description="Serve the simulated devices of CONFIG (see docs/plantsim.md), or send a command "
        "to a running simulator: status, fault INSTANCE KIND [--g G] [--growth G], plc INSTANCE ok|busy|silent.",
    )
    from edge_agent.drivers.simulation.plantsim import add_arguments as add_plantsim_arguments

    add_plantsim_arguments(s)
    s.set_defaults(func=_lazy("edge_agent.drivers.simulation.plantsim", "cmd_plantsim"))

    _add_remote_commands(sub)
    return p


def _add_remote_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from edge_agent.agent.ops.connection import add_args

    s = sub.add_parser(
        "push-config",
        help="write the desired instances of agents (ids, patterns, groups) in waves and wait for their answers",
    )
    s.add_argument("file", nargs="?", help="TOML (or JSON) file with [[instances]] only")
    s.add_argument("--agent", action="append", help="agent id or pattern with * (repeat)")
    s.add_argument("--group", action="append", help="every agent listing this group in [agent] groups (repeat)")
    s.add_argument("--patch", action="store_true", help="add/replace the file's instances, keep the other pushed ones")
    s.add_argument("--remove", action="append", metavar="NAME", help="remove a pushed instance (a patch; repeat)")
    s.add_argument("--clear", action="store_true", help="withdraw every pushed instance: the agents run their file")
    s.add_argument("--version", type=int, dest="config_version", help="config version (default: next fleet-wide)")
    s.add_argument("--force", action="store_true", help="re-apply even if this version is applied")
    s.add_argument("--check-s", type=float, help="seconds each new instance has to deliver a good value")
    s.add_argument(
        "--sign", metavar="KEY", help="Ed25519 private key (PEM) to sign with (or sign_key in the CLI config)"
    )
    s.add_argument(
        "--ttl",
        type=float,
        default=7 * 86400,
        help="seconds a one-shot push (config/set) stays valid (default 7 days); retained desired documents "
        "carry no expiry",
    )
    s.add_argument("--wave", type=int, default=10, help="agents per wave (default 10)")
    s.add_argument("--max-failures", type=int, default=0, help="failures tolerated before the rollout stops")
    s.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a wave's answers")
    s.add_argument("--json", action="store_true", help="results as JSON")
    add_args(s)
    s.set_defaults(func=_lazy("edge_agent.agent.ops.push", "cmd_push_config"))

    s = sub.add_parser(
        "fleet",
        help="inventory: every agent, online, versions, drift and why, instances, last seen; "
        "`fleet resign`: sign every retained desired document again with the current key",
    )
    s.add_argument("action", nargs="?", choices=["resign"], help="resign: after a key rotation (docs/remote.md)")
    s.add_argument("--sign", metavar="KEY", help="resign: the Ed25519 private key (or sign_key in the CLI config)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--wait", type=float, default=5.0, help="longest time to read the retained state")
    add_args(s)
    s.set_defaults(func=_lazy("edge_agent.agent.ops.fleet", "cmd_fleet"))

    s = sub.add_parser("cmd", help="send a command to an agent: ping, status, reload, config, restart INSTANCE")
    s.add_argument("agent_id", metavar="AGENT")
    s.add_argument("name", metavar="COMMAND", help="ping | status | reload | config | restart | a plugin command")
    s.add_argument("instance", nargs="?", metavar="INSTANCE", help="the instance (restart, capture, write)")
    s.add_argument(
        "--arg",
        action="append",
        metavar="KEY=VALUE",
        help="command argument (repeat); a list or object is JSON: points='[[40,40.8],[100,100.8]]'; KEY:=JSON for any",
    )
    s.add_argument(
        "--save", action="append", metavar="KEY=FILE", help="write a bytes field of the answer to FILE (png=pump1.png)"
    )
    s.add_argument(
        "--sign",
        metavar="KEY",
        help="Ed25519 private key (PEM) to sign change commands with (or sign_key in the CLI config)",
    )
    s.add_argument("--by", help="who runs the command, recorded in the agent's audit (default: user@host)")
    s.add_argument(
        "--ttl", type=float, default=60.0, help="seconds a signed command stays valid (default 60, at most 900)"
    )
    s.add_argument("--timeout", type=float, default=10.0)
    s.add_argument("--json", action="store_true", help="the whole answer as JSON (for scripts; default: a summary)")
    add_args(s)
    s.set_defaults(func=_lazy("edge_agent.agent.ops.fleet", "cmd_cmd"))

    s = sub.add_parser("get-config", help="print an agent's effective config as TOML")
    s.add_argument("agent_id", metavar="AGENT")
    s.add_argument("--timeout", type=float, default=10.0)
    s.add_argument("--json", action="store_true")
    add_args(s)
    s.set_defaults(func=_lazy("edge_agent.agent.ops.fleet", "cmd_get_config"))

    s = sub.add_parser("keygen", help="create an Ed25519 key pair for signed config pushes")
    s.add_argument("out", help="private key file to write (the public key goes to OUT.pub)")
    s.set_defaults(func=_lazy("edge_agent.agent.ops.push", "cmd_keygen"))

    s = sub.add_parser(
        "capture",
        help="capture a raw waveform from a vibration instance; --list/--get the alarm-triggered captures",
    )
    s.add_argument("--agent", required=True)
    s.add_argument("--instance", help="live capture: the vibration instance")
    s.add_argument("--seconds", type=float, default=1.0)
    s.add_argument("--out", help="live: FILE.npy, FILE.wav or FILE.csv; --get: the capture file (default ID.cap)")
    s.add_argument("--plot", help="also draw FILE.png (needs the plot extra)")
    s.add_argument("--list", action="store_true", help="list the captures the agent saved on alarms")
    s.add_argument("--get", metavar="ID", help="fetch a saved capture (chunked over MQTT)")
    s.add_argument("--timeout", type=float, default=30.0)
    add_args(s)
    s.set_defaults(func=_capture)

    s = sub.add_parser("alarms", help="an agent's alarm list (ISA-18.2 states)")
    s.add_argument("agent_id", metavar="AGENT")
    s.add_argument("--json", action="store_true")
    s.add_argument("--timeout", type=float, default=10.0)
    add_args(s)
    s.set_defaults(func=_lazy("edge_agent.agent.ops.alarms", "cmd_alarms"))

    s = sub.add_parser("ack", help="acknowledge an alarm (its id from 'edge-agent alarms', or all)")
    s.add_argument("agent_id", metavar="AGENT")
    s.add_argument("alarm_id", metavar="ID")
    s.add_argument("--by", required=True, help="who acknowledges (recorded in the audit trail)")
    s.add_argument("--comment", default="")
    s.add_argument("--timeout", type=float, default=10.0)
    add_args(s)
    s.set_defaults(func=_lazy("edge_agent.agent.ops.alarms", "cmd_ack"))

    s = sub.add_parser("audit", help="who did what on an agent: acks, calibrations, sign-offs, restarts, writes")
    s.add_argument("agent_id", metavar="AGENT")
    s.add_argument("--since", default="7d", help="how far back: 12h, 7d (default 7d)")
    s.add_argument("--limit", type=int, default=200)
    s.add_argument("--json", action="store_true")
    s.add_argument("--timeout", type=float, default=10.0)
    add_args(s)
    s.set_defaults(func=_lazy("edge_agent.agent.ops.alarms", "cmd_audit"))

    s = sub.add_parser("history", help="an agent's on-device history of one value: table, --csv or --png")
    s.add_argument("agent_id", metavar="AGENT")
    s.add_argument("instance", metavar="INSTANCE")
    s.add_argument("key", metavar="KEY", help="the value's key, e.g. motor_de.temp_c")
    s.add_argument("--since", default="1d", help="how far back: 30m, 12h, 7d (default 1d)")
    s.add_argument("--resolution", choices=("auto", "minute", "hour"), default="auto")
    s.add_argument("--csv", metavar="FILE", help="write the points as CSV")
    s.add_argument("--png", metavar="FILE", help="draw a trend (PNG or .svg; needs the plot extra)")
    s.add_argument("--timeout", type=float, default=10.0)
    add_args(s)
    s.set_defaults(func=_lazy("edge_agent.agent.ops.history", "cmd_history"))

    s = sub.add_parser("panel", help="the technician's web panel (its own process; needs its config file)")
    s.add_argument("-c", "--config", required=True, help="the panel's TOML (docs/panel.md): off unless configured")
    s.set_defaults(func=_lazy("edge_agent.agent.ops.panel.server", "cmd_panel"))

    s = sub.add_parser("panel-user", help="add or change a panel user (password from stdin or a prompt)")
    s.add_argument("users_file", metavar="USERS_FILE")
    s.add_argument("name", metavar="NAME")
    s.add_argument("--role", choices=("viewer", "technician", "admin"), default="technician")
    s.set_defaults(func=_lazy("edge_agent.agent.ops.panel.server", "cmd_panel_user"))

    s = sub.add_parser("report", help="an agent's shift report as a table, --png as a one-page picture")
    s.add_argument("agent_id", metavar="AGENT")
    s.add_argument("--line", help="the production instance (default: the newest report of any line)")
    which = s.add_mutually_exclusive_group()
    which.add_argument("--shift", help="the newest report of the shift with this name")
    which.add_argument("--last", action="store_true", help="the newest report (the default)")
    s.add_argument("--png", metavar="FILE", help="also draw the report as a one-page PNG (needs the plot extra)")
    s.add_argument("--json", action="store_true", help="the report as JSON")
    s.add_argument("--timeout", type=float, default=10.0)
    add_args(s)
    s.set_defaults(func=_lazy("edge_agent.agent.ops.reports", "cmd_report"))

    s = sub.add_parser(
        "maintenance", help="what is due and overdue on an agent (--plans: every plan, --history: sign-offs)"
    )
    s.add_argument("agent_id", metavar="AGENT")
    view = s.add_mutually_exclusive_group()
    view.add_argument("--due", action="store_true", help="plans due or overdue now, overdue first (the default)")
    view.add_argument("--plans", action="store_true", help="every plan of every asset with how far it is")
    view.add_argument("--history", action="store_true", help="the sign-offs (maintenance_done), newest first")
    s.add_argument("--limit", type=int, default=50, help="sign-offs to list (at most 200)")
    s.add_argument("--json", action="store_true", help="the answer as JSON")
    s.add_argument("--timeout", type=float, default=10.0)
    add_args(s)
    s.set_defaults(func=_lazy("edge_agent.agent.ops.planner", "cmd_maintenance"))


def _capture(args: argparse.Namespace) -> int:
    from edge_agent.agent.ops.capture import run_capture
    from edge_agent.agent.ops.connection import ClientError, resolve

    try:
        settings = resolve(args)
    except ClientError as exc:
        raise SystemExit(f"capture: {exc}") from exc
    if args.list or args.get:
        from edge_agent.agent.ops import reports as saved

        if args.list:
            return saved.list_captures(settings, args.agent, args.timeout)
        return saved.get_capture(settings, args.agent, args.get, args.out, args.plot, args.timeout)
    if not args.instance or not args.out:
        raise SystemExit("capture: give --instance and --out (a live capture), or --list, or --get ID")
    return run_capture(
        settings=settings,
        agent=args.agent,
        instance=args.instance,
        seconds=args.seconds,
        out=args.out,
        plot=args.plot,
        timeout_s=args.timeout,
    )


def single_threaded_blas() -> None:
    """One BLAS thread: feature math is per-window vector work, and OpenBLAS's extra worker
    busy-waits after every call (measured: the reference plant 17.0 -> 6.7 % of a core). Must run
    before numpy is imported; an explicit setting in the environment wins."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


# glibc <malloc.h> mallopt() parameters, and what the agent sets unless the environment says
# otherwise (glibc reads MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ itself).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
MALLOC_SETTINGS: tuple[tuple[str, int, int], ...] = (
    # At most two arenas: glibc gives each thread that allocates its own, up to 8 per core, and
    # memory freed in one is not reused by the others (reference plant: 67 -> 61 MB RSS, same CPU).
    ("MALLOC_ARENA_MAX", M_ARENA_MAX, 2),
    # Fixed thresholds instead of glibc's sliding ones: after a large block (a capture, a config
    # state) is freed glibc raises both to its size, and the arenas then keep up to twice that in
    # free pages for ever (the plant's RSS grew 4-6 MB in its first two minutes, all of it free
    # space in the arenas). Blocks from 256 kB are mapped on their own and go back when freed: the
    # vibration workspaces, kept from window to window, cost no page faults that way (measured:
    # the 25.6 kHz lane 0.45 % of a core at 256 kB and at 1 MB, RSS 1.3 MB less); free space at
    # the top of an arena beyond 2 MB goes back.
    ("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, 256 * 1024),
    ("MALLOC_TRIM_THRESHOLD_", M_TRIM_THRESHOLD, 2 * 1024 * 1024),
)


def tune_malloc() -> None:
    """glibc malloc as the systemd unit sets it (MALLOC_SETTINGS), for every way the agent is
    started (demo, bench, a shell). A setting present in the environment wins; other C libraries
    (musl has no mallopt) are left alone."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return
    for variable, parameter, value in MALLOC_SETTINGS:
        if variable not in os.environ:
            mallopt(parameter, value)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    single_threaded_blas()
    tune_malloc()
    # A thread holding the GIL (FIFO drain, feature math) keeps the event loop waiting up to the
    # switch interval at every hand-over; at the default 5 ms a Modbus poll of 8 sequential
    # requests took 13 ms in the reference plant, at 1 ms 4.6 ms (p99 latency of 1-Hz values
    # 25 -> 12 ms), and the 3.2 kHz FIFO drains stop overrunning. CPU cost: within noise.
    sys.setswitchinterval(0.001)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
