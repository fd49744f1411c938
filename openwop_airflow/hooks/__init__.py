"""The OpenWOP hook and the reading of ``openwop`` connections."""
