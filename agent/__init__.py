"""edge-agent core: the daemon (runtime, config, messaging, remote, sparkplug, maintenance), ops/ and devtools/."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("edge-agent")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+src"
