"""`minidocker-runc`: minidocker's low-level runtime behind runc's command line.

Docker's stack is dockerd -> containerd -> containerd-shim-runc-v2 -> runc: the shim runs
`runc create --bundle B --pid-file P ID`, then `runc start ID`, `runc kill ID 15`,
`runc delete ID` (and `exec`, `pause`, `resume`, `ps`, `update`). Any program that answers
those verbs as runc does can take runc's place: crun and youki do, and so does this one,
with core/runc.py (the same code `minidocker run` uses) doing the work.

    state.py   what a container is between two commands: <root>/<id>/state.json, exec.fifo
    hooks.py   the OCI hooks (dockerd's network setup is a prestart hook)
    spec.py    `spec`: the default config.json `runc spec` writes
    cli.py     the verbs and runc's flags, errors and exit codes
"""
