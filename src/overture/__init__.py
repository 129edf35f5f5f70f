"""Overture: open-source real-time offer decisioning."""

__version__ = "0.1.0"
