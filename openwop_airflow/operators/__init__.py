"""OpenWOP operators: run, fork, resolve an interrupt, cancel."""
