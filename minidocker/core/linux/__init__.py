"""The kernel interface: thin ctypes wrappers for the system calls `os` lacks (see syscalls.py)."""
