"""HTTP routes: devices, erpnext (proxy), health."""
