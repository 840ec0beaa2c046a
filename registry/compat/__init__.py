"""The original registry API: its async repository port, its index.json layout, the recorder bridge."""
