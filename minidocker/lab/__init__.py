"""Helpers for the notebooks and labs: thin wrappers over the package, with unit tests.

session.py      a notebook's private state root, its child processes, a clean-up that
                leaves nothing behind (never fork()s in the kernel)
preflight.py    the host checks of 00-preflight, each problem with its fix
procview.py     readers for /proc: status, namespace links, parents, mount tables
layers.py       the layer walker and explorer of 05-overlay2
plots.py        use_cjk_font(): a CJK font for the plots, so Chinese labels are not boxes
realdocker.py   a private real dockerd, to run the same command in Docker side by side
capstone.py     notebook 99: a learner's step into a MINIDOCKER_STEPS file, runs through it
securitylab.py  notebook 10: tiny ELF probes, the probe matrix and its picture, package records
apiproxy.py     notebook 11: a logging proxy on a unix socket (the Engine API requests one command makes)
stackview.py    notebook 11: the stack (CLI, daemon, containerd, shim, runc) and a sequence diagram
orchestration.py notebook 12: one private dockerd + registry + minidocker serve, a swarm's clean-up,
                the bounded client loop, a loopback load balancer, the rolling-update timeline
quiz.py         interview-prep: flash cards from the interview notebook, progress in a small file
glossary.py     the bilingual glossary (术语表) every notebook shares
"""
