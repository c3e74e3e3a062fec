"""edge-agent core daemon: CLI, config, registry, runtime, MQTT session, codec."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("edge-agent")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+src"
