"""The simulated city: territory, workload and the driver that offers it (``wangge simulate``)."""
