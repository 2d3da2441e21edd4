"""deskfleet: a Kubernetes operator for remote-workspace infrastructure."""

__version__ = "0.1.0"
