"""Shared bus code for chip drivers: minimal SPI and I2C interfaces and their hardware backends."""
