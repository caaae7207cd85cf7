"""Containers: spec (what to run), state (lifecycle rules), store (on disk), init (inside the
container, up to execve), shim (the monitor outside), lifecycle (the verbs)."""
