"""The teaching core: what one `docker run` needs, and nothing of Docker's surface.

Read in this order (each module names the notebook that teaches it):

    linux/syscalls.py   unshare, setns, mount, umount2, pivot_root, sethostname, prctl, capset
    linux/procfs.py     /proc/<pid>/mountinfo and /proc/<pid>/stat, parsed once
    linux/netdev.py     bring `lo` up in a new network namespace
    linux/recorder.py   a syscall layer that writes calls down instead (tests, notebook 02)
    security.py         the 14 capabilities Docker keeps; masked and read-only paths
    overlay2.py         layers: diff/ link lower work/ merged/, l/ short names, whiteouts
    cgroups/            detect v1/v2/hybrid; drivers that write limits, freeze, measure
    bundle.py           config.json, the OCI runtime spec: read, check, write
    rootfs.py           the mount sequence up to pivot_root (order asserted without root)
    init.py             PID 1's setup, and finalize(): user, caps, cwd, execve (shared with exec)
    runc.py             run a bundle: PID namespace, fork, cgroup, the createRuntime hook
    nsexec.py           a process in a running container (setns), as `runc exec`
    shim.py             the monitor around one container: stdio, logs, wait, report
    steps.py            MINIDOCKER_STEPS: a learner's function in place of one of the above (nb 99)

Nothing here imports images, containers' records, networks or the CLI: the engine
(minidocker/engine) writes a bundle, the core runs it, as dockerd hands config.json to runc.
"""
