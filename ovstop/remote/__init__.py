"""Reading other hosts: a headless ovstop over HTTP (``--connect``) and a fleet through Prometheus."""
