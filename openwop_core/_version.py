"""Version of the openwop-integrations distribution."""

__version__ = "0.1.0"
