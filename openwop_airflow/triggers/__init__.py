"""OpenWOP triggers."""
