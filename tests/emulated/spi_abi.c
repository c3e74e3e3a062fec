/* The spidev ABI as the target's compiler and kernel headers see it: compared with the Python
 * layout in edge_agent.drivers.adxl345.bus by tests/emulated (arm64 and armhf). */
#include <stddef.h>
#include <stdio.h>
#include <linux/spi/spidev.h>

int main(void) {
    printf("size %zu\n", sizeof(struct spi_ioc_transfer));
    printf("offsets %zu %zu %zu %zu %zu %zu %zu\n", offsetof(struct spi_ioc_transfer, tx_buf),
           offsetof(struct spi_ioc_transfer, rx_buf), offsetof(struct spi_ioc_transfer, len),
           offsetof(struct spi_ioc_transfer, speed_hz), offsetof(struct spi_ioc_transfer, delay_usecs),
           offsetof(struct spi_ioc_transfer, cs_change), offsetof(struct spi_ioc_transfer, word_delay_usecs));
    printf("message1 %lu\n", (unsigned long)SPI_IOC_MESSAGE(1));
    printf("message13 %lu\n", (unsigned long)SPI_IOC_MESSAGE(13));
    printf("pointer %zu\n", sizeof(void *));
    return 0;
}
