"""Helpers for the notebooks and labs: thin wrappers over the package, with unit tests.

session.py      a notebook's private state root, its child processes, a clean-up that
                leaves nothing behind (never fork()s in the kernel)
preflight.py    the host checks of 00-preflight, each problem with its fix
procview.py     readers for /proc: status, namespace links, parents, mount tables
layers.py       the layer walker and explorer of 05-overlay2
plots.py        use_cjk_font(): a CJK font for the plots, so Chinese labels are not boxes
realdocker.py   a private real dockerd, to run the same command in Docker side by side
capstone.py     notebook 99: a learner's step into a MINIDOCKER_STEPS file, runs through it
"""
