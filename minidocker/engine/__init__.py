"""The engine: Docker's verbs on containers, one module each (engine/runtime.py lists them).

It is dockerd's part of minidocker: it turns a container record into an OCI bundle
(oci.py) and hands it to the core (core/runc.py through the monitor, monitor.py).
"""
