"""The feature layer: raw handler features built once and Qlib's dataset cache tied to the data version."""
