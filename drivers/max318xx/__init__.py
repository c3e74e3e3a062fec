"""MAX318xx temperature converters over SPI: the MAX31855 and MAX31856 thermocouple and the MAX31865 RTD
converters, one module and one ``SPEC`` each, with a simulated chip behind the same SPI code."""
