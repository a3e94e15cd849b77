"""tdxproof: formal verification of Linux CPU-hotplug and locking protocols."""

__version__ = "0.1.0"
