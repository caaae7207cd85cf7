"""Images: reference (names), store (layers, configs, tags), busybox (the offline image)."""
