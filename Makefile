# minidocker: two commands to remember (as root on Debian/Ubuntu, or inside the Vagrant VM)
#   make lab    install everything, then start JupyterLab on your copy of the course (course/)
#   make test   install everything, then run every test (unit, real containers, docker side by side)

# The Python environment: .venv here, or the one scripts/provision.sh made on the machine's own
# disk (inside the lab VM: /opt/minidocker/venv), so `sudo make test` in /vagrant just works.
VENV ?= $(shell cat /etc/minidocker/python-env 2>/dev/null || echo .venv)
PY := $(VENV)/bin/python
export MINIDOCKER_VENV := $(VENV)
PYTEST_ARGS ?=

.PHONY: setup lab test bench clean vm-test grade

setup:
	./scripts/setup.sh

# JupyterLab listens on 127.0.0.1 only, with a token (it prints the URL to open): the kernels run as
# root, so anyone who can reach the port owns the machine. LAB_IP=0.0.0.0 only inside a VM whose
# forwarded port is bound to the host's 127.0.0.1 (the Vagrantfile's service does that).
LAB_IP ?= 127.0.0.1
LAB_PORT ?= 8888

# The learner's copy: notebooks/ holds the instructor's source (solutions in); course/ gets the
# copy without solutions, hidden tests or outputs. A copy you have worked in is never overwritten
# (a newer version lands beside it as NN-name.new.ipynb). `reveal("<exercise id>")` in a notebook
# shows one solution, on purpose.
lab:
	EXTRAS=test,lab ./scripts/setup.sh
	$(PY) -m minidocker.lab.course learner notebooks/ course/
	$(PY) -m jupyter lab --allow-root --ip=$(LAB_IP) --port=$(LAB_PORT) --no-browser --ServerApp.root_dir=course/

test:
	EXTRAS=test,lab ./scripts/setup.sh
	$(PY) -m ruff check minidocker tests benchmarks labs/nbgrader_config.py labs/grader
	MINIDOCKER_STRICT=1 $(PY) -m pytest -ra $(PYTEST_ARGS)

# Grade a class: SUBMISSIONS=dir with one folder per student (labs/README.md)
grade:
	EXTRAS=test,lab ./scripts/setup.sh
	$(PY) -m minidocker.lab.grade $(SUBMISSIONS)

# Every issue-23 figure next to docker's and runc's, measured in the same run (~8 min), as root.
# BENCH_ARGS="--only run,memory" for some sections, "--notebooks 00" for nbval times (benchmarks/run_bench.py --help)
BENCH_ARGS ?=
bench:
	./scripts/setup.sh
	$(PY) benchmarks/run_bench.py $(BENCH_ARGS)

clean:
	$(PY) -m minidocker system prune -f || true

# The test suite inside a real Vagrant VM (Debian 12, pure cgroup v2), offline: builds and caches
# a box, brings the VM up under QEMU, runs `make test` in it, destroys it. See scripts/vm-test.sh.
vm-test:
	./scripts/vm-test.sh
