"""The course's bilingual glossary (术语表): one list that every notebook shares.

    from minidocker.lab import glossary
    glossary.show("whiteout")        # the entry, in a notebook (markdown)
    glossary.show()                  # the whole table
    python -m minidocker.lab.glossary   # the table as markdown, for the README or a handout

Each entry: the English term, the Chinese term (as the seed and Chinese Docker docs say it), one
line of meaning, and the notebook that teaches it. tests/test_interview.py checks that every
notebook named exists.
"""
from __future__ import annotations

import sys
from typing import NamedTuple


class Term(NamedTuple):
    en: str
    zh: str
    meaning: str
    notebook: str   # the course notebook that teaches it (file name)


TERMS: tuple[Term, ...] = (
    Term("container", "容器",
         "a process (tree) the kernel isolates with namespaces and limits with cgroups, on a root of its own",
         "01-container-is-a-process.ipynb"),
    Term("image", "镜像",
         "read-only layers plus a config (command, env, ...): the template a container starts from",
         "08-images-and-build.ipynb"),
    Term("layer", "镜像层",
         "one tar of file changes; images share layers by their digest",
         "05-overlay2.ipynb"),
    Term("root filesystem (rootfs)", "根文件系统",
         "the directory a container sees as /, made its root by pivot_root",
         "02-rootfs.ipynb"),
    Term("pivot_root", "切换根目录",
         "the syscall that swaps the mount namespace's root and lets the old one be unmounted",
         "02-rootfs.ipynb"),
    Term("chroot", "改变根目录",
         "changes a process's root directory only: escapable, so runtimes use pivot_root",
         "02-rootfs.ipynb"),
    Term("namespace", "命名空间",
         "what a process can see: PID, mount, network, UTS, IPC, user, cgroup, time",
         "03-namespaces.ipynb"),
    Term("control group (cgroup)", "控制组",
         "what a process may use: memory, CPU, PIDs, I/O, devices; also how they are counted",
         "04-cgroups.ipynb"),
    Term("OOM killer", "内存溢出终止",
         "the kernel killing a process of a cgroup over its memory limit (exit 137, OOMKilled)",
         "04-cgroups.ipynb"),
    Term("union filesystem", "联合文件系统",
         "several directories seen as one; Docker uses overlayfs (the overlay2 driver)",
         "05-overlay2.ipynb"),
    Term("copy-up", "写时复制",
         "copy-on-write: a lower file is copied to the upper directory the first time it is written",
         "05-overlay2.ipynb"),
    Term("whiteout", "whiteout 文件（删除标记）",
         "a character device 0/0 in the upper layer that hides a lower file (the seed's 白名单 is a mistranslation)",
         "05-overlay2.ipynb"),
    Term("opaque directory", "不透明目录",
         "an upper directory marked trusted.overlay.opaque=y: hides everything below it",
         "05-overlay2.ipynb"),
    Term("bridge network", "桥接网络",
         "a Linux bridge with a veth per container and NAT to the outside: Docker's default",
         "06-networking.ipynb"),
    Term("veth pair", "虚拟网卡对",
         "two linked network devices: one in the container, one on the bridge",
         "06-networking.ipynb"),
    Term("port publishing", "端口映射",
         "-p: a DNAT rule (and a proxy) from a host port to the container's",
         "06-networking.ipynb"),
    Term("embedded DNS", "内嵌 DNS",
         "127.0.0.11 on user networks: containers find each other by name",
         "06-networking.ipynb"),
    Term("user-defined network", "自定义网络",
         "docker network create: a bridge and subnet of its own, isolated, with names resolved by the embedded DNS",
         "06-networking.ipynb"),
    Term("overlay network", "覆盖网络（overlay）",
         "one virtual LAN across the hosts of a swarm: frames wrapped in VXLAN (UDP 4789) between hosts",
         "06-networking.ipynb"),
    Term("stateless container", "无状态容器",
         "keeps nothing it needs in its own layer (data in volumes, config from outside): replaceable at any time",
         "07-volumes-and-data.ipynb"),
    Term("volume", "数据卷",
         "a directory Docker manages (/var/lib/docker/volumes) bind-mounted into containers; outlives them",
         "07-volumes-and-data.ipynb"),
    Term("bind mount", "绑定挂载",
         "a host path mounted into the container as it is",
         "07-volumes-and-data.ipynb"),
    Term("tmpfs mount", "临时文件系统挂载",
         "a memory-backed mount, gone when the container stops",
         "07-volumes-and-data.ipynb"),
    Term("Dockerfile", "Dockerfile",
         "the build recipe: each instruction changes the filesystem (a layer) or only the config",
         "08-images-and-build.ipynb"),
    Term("build cache", "构建缓存",
         "a step is reused when its instruction and its inputs are unchanged",
         "08-images-and-build.ipynb"),
    Term("multi-stage build", "多阶段构建",
         "several FROMs; only the last stage's files (and what it COPY --from's) ship",
         "08-images-and-build.ipynb"),
    Term("registry", "镜像仓库（注册中心）",
         "an HTTP server storing images as manifests and blobs (the v2 API); Docker Hub is one",
         "08-images-and-build.ipynb"),
    Term("manifest", "清单",
         "the JSON naming an image's config and layers by digest",
         "08-images-and-build.ipynb"),
    Term("digest", "摘要",
         "sha256 of content: what makes images and layers content-addressed",
         "08-images-and-build.ipynb"),
    Term("build argument", "构建参数（ARG）",
         "a variable of `docker build` only (--build-arg); not in the container's env, but in the image's history",
         "08-images-and-build.ipynb"),
    Term("restart policy", "重启策略",
         "no / on-failure[:N] / always / unless-stopped: when the engine starts an ended container again",
         "09-lifecycle-and-operations.ipynb"),
    Term("health check", "健康检查",
         "a command run in the container periodically; three failures in a row make it unhealthy",
         "09-lifecycle-and-operations.ipynb"),
    Term("exit code", "退出码",
         "0 ok, 125 Docker refused, 126 not executable, 127 not found, 128+N killed by signal N",
         "09-lifecycle-and-operations.ipynb"),
    Term("detached mode", "分离模式（后台运行）",
         "run -d: the container runs on; you get its id back",
         "09-lifecycle-and-operations.ipynb"),
    Term("capability", "能力（Linux capabilities）",
         "a piece of root's power (CAP_NET_ADMIN, CAP_SYS_ADMIN ...); Docker keeps 14 by default",
         "10-security.ipynb"),
    Term("seccomp", "安全计算模式（seccomp）",
         "a BPF filter on system calls; Docker's default profile blocks ~44 risky ones of 300+",
         "10-security.ipynb"),
    Term("AppArmor", "AppArmor",
         "a Linux security module profile (docker-default) that denies paths and mounts",
         "10-security.ipynb"),
    Term("user namespace", "用户命名空间",
         "root inside, an unprivileged uid outside (--userns-remap, rootless mode)",
         "10-security.ipynb"),
    Term("privileged container", "特权容器",
         "--privileged: all capabilities, all devices, no seccomp or AppArmor: root on the host",
         "10-security.ipynb"),
    Term("vulnerability scanning", "漏洞扫描",
         "matching an image's packages against advisories (CVEs)",
         "10-security.ipynb"),
    Term("SBOM", "软件物料清单（SBOM）",
         "the list of packages an image holds (CycloneDX, SPDX): what a vulnerability scanner matches",
         "10-security.ipynb"),
    Term("Docker in Docker (DinD)", "容器中的 Docker（DinD）",
         "a second, complete dockerd inside a --privileged container (docker:dind); its containers are nested",
         "10-security.ipynb"),
    Term("Docker-outside-of-Docker (DooD)", "挂载宿主机 Docker 套接字（DooD）",
         "the host's docker.sock mounted into a container: its containers are siblings on the host; root on the host",
         "10-security.ipynb"),
    Term("Docker daemon", "Docker 守护进程",
         "dockerd: the server behind the docker CLI's REST calls (the Engine API)",
         "11-architecture.ipynb"),
    Term("Engine API", "引擎 API",
         "the daemon's HTTP API on /var/run/docker.sock (create, start, attach, wait ...)",
         "11-architecture.ipynb"),
    Term("OCI runtime", "OCI 运行时",
         "runc and its kind: run a container from a bundle (config.json + rootfs)",
         "11-architecture.ipynb"),
    Term("shim", "垫片进程（shim）",
         "the small process that stays the container's parent while the daemon may restart",
         "11-architecture.ipynb"),
    Term("Compose", "Docker Compose（容器编排文件）",
         "a YAML file describing several services, networks and volumes started together",
         "12-beyond-one-host.ipynb"),
    Term("orchestration", "容器编排",
         "placing, scaling, healing and updating containers across machines",
         "12-beyond-one-host.ipynb"),
    Term("Swarm service", "Swarm 服务",
         "a desired state (image, replicas) the swarm keeps true with tasks",
         "12-beyond-one-host.ipynb"),
    Term("rolling update", "滚动更新",
         "replacing a service's tasks a few at a time, with a rollback if they fail",
         "12-beyond-one-host.ipynb"),
    Term("blue/green deployment", "蓝绿部署",
         "two full versions side by side; switch the traffic at once, switch back to roll back",
         "12-beyond-one-host.ipynb"),
    Term("secret", "密钥（Secret）",
         "a credential given to a service as a file in /run/secrets, not in the image or env",
         "12-beyond-one-host.ipynb"),
)


def lookup(word: str) -> list[Term]:
    """The entries whose English or Chinese term contains `word` (case-insensitive)."""
    w = word.lower()
    return [t for t in TERMS if w in t.en.lower() or word in t.zh]


def markdown(terms=TERMS) -> str:
    rows = ["| English | 中文 | meaning | taught in |", "|---|---|---|---|"]
    rows += [f"| {t.en} | {t.zh} | {t.meaning} | {t.notebook} |" for t in terms]
    return "\n".join(rows)


def show(word: str | None = None):
    """Display the entries for `word` (or the whole glossary) in a notebook."""
    from IPython.display import Markdown, display
    terms = lookup(word) if word else TERMS
    display(Markdown(markdown(terms) if terms else f"(no glossary entry for {word!r})"))


if __name__ == "__main__":
    sys.stdout.write(markdown() + "\n")
