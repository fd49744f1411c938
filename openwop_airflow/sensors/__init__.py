"""OpenWOP sensors."""
