"""pos-edge: a multi-tenant retail POS gateway in front of ERPNext."""

__version__ = "0.1.0"
