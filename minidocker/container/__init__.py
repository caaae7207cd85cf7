"""Docker's container object: what a container *is* on disk, before anything runs.

    store.py       containers/<id>/config.v2.json + hostconfig.json, locks, name lookup
    state.py       the states (created, running, paused, exited, ...) and legal transitions
    runconfig.py   ENTRYPOINT/CMD, environment, -u user lookup, signals: Docker's rules
    hostconfig.py  HostConfig (limits, mounts, network mode) and its OCI linux.resources
    names.py       random names like `focused_turing`
    etcfiles.py    /etc/hostname, /etc/hosts, /etc/resolv.conf as Docker writes them
    logs.py        the json-file log driver

The verbs that act on containers are in minidocker/engine; running one is minidocker/core.
"""
