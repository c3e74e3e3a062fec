"""Serial line instruments: RS-232/RS-485 ASCII thermometers and transmitters over pyserial."""

from edge_agent.drivers.serial_line.driver import SPEC

__all__ = ["SPEC"]
