"""minidocker: a small, real container runtime, built to teach how Docker works.

Two halves, marked in the layout. Read the teaching core first, in this order: it is all
one `docker run` needs, and it knows nothing of images, names or Docker's surface.

    core/                what one `docker run` needs (notebooks 01-05)
      linux/syscalls.py    the thin syscall layer: unshare, setns, mount, pivot_root, capset
      linux/procfs.py      reading /proc: mountinfo, <pid>/stat
      security.py          Docker's default capabilities, masked and read-only paths
      overlay2.py          layers in Docker's on-disk layout; whiteouts; the union mount
      cgroups/             limits and measurements: v1, v2 and hybrid hosts
      bundle.py            the OCI bundle (config.json): the contract between Docker and runc
      rootfs.py            the container's filesystem: mounts, /dev, pivot_root, masked paths
      init.py              the child: namespaces, rootfs, user and capabilities, execve
      runc.py              the low-level runtime: runs a bundle
      nsexec.py            `exec`: join a running container's namespaces
      shim.py              the monitor: stdio, logs, wait, exit code

Then Docker's objects and verbs, built on the core:

    container/  images/  storage/  network/  volumes.py   Docker's objects: records on disk,
                                                          each module one concept
    engine/              the verbs (create, start, stop, exec, rm, ...), one module each;
                         engine/oci.py turns a container into config.json
    compat/              Docker's surface: the CLI (tables, flags, exit codes), Go templates,
                         the docker-py shaped API, Dockerfile builds
    lab/                 notebook helpers
    errors.py  paths.py  fsutil.py  gotime.py   bottom helpers anyone may use
    spawn.py                                     starting a helper process (never fork())

Imports go one way only: lab may use compat, compat the engine, the engine Docker's objects,
the objects the core, never the reverse, and never in a circle (tests/test_package_layout.py
checks it). Importing the package is cheap on purpose: every `minidocker run` starts Python
twice (the CLI, then the container's monitor).
"""
__version__ = "0.1.0"


def __getattr__(name):
    # `minidocker.from_env()` / `minidocker.Client` without importing the API on every CLI call
    if name in ("from_env", "Client", "ContainerError"):
        from .compat import api
        return getattr(api, name)
    raise AttributeError(f"module 'minidocker' has no attribute {name!r}")
