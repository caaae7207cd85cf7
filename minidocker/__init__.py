"""minidocker: a small, real container runtime, built to teach how Docker works.

The package reads like a course, from the kernel up:

    linux/       the thin syscall layer (unshare, setns, mount, pivot_root, ...)
    security.py  capabilities and masked paths Docker applies by default
    rootfs.py    the container's filesystem: /dev, /proc, /sys, pivot_root
    storage/     overlay2 layers in Docker's on-disk layout, layer tarballs
    images/      image references, the image store, the offline busybox image
    container/   spec (what to run), state (lifecycle), store (on disk), init (inside), shim (monitor)
    api.py       a docker-py shaped Python client, used by the notebooks
    cli/         the `minidocker` command line, shaped like `docker`

Importing the package is cheap on purpose: every `minidocker run` starts Python twice
(the CLI, then the container's monitor), so nothing heavy is imported here.
"""
__version__ = "0.1.0"


def __getattr__(name):
    # `minidocker.from_env()` / `minidocker.Client` without importing the API on every CLI call
    if name in ("from_env", "Client", "ContainerError"):
        from .compat import api
        return getattr(api, name)
    raise AttributeError(f"module 'minidocker' has no attribute {name!r}")
