# System tests (sys-*): registered here; filled in by the system-test work.
