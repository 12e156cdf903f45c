"""cnncalc: shapes, parameters and MACs/FLOPs of convolutional networks from YAML specs, proved by execution."""

__version__ = "0.1.0"
