# NOT RUN HERE (no Kubernetes cluster on the project's machines): a JupyterHub sketch for a large
# class, one pod per student with what the labs need (root in the pod, the capabilities of
# minidocker.lab.grade.DOCKER_RUN_FLAGS, a non-overlay /tmp), on nodes reserved for the course.
# Each pod is root on its node: students on the same node are not isolated from each other. For
# strangers, prefer one VM per student (a spawner that starts VMs from the lab VM's image).
#
# The singleuser image is the grader image (labs/grader/make_context.py) plus JupyterLab: add
# "jupyterlab" and "jupyterhub" to make_context.NEEDED and start `jupyterhub-singleuser`.
c = get_config()  # noqa: F821 -- given by JupyterHub

c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.KubeSpawner.image = "registry.example.edu/minidocker-lab:latest"
c.KubeSpawner.uid = 0
c.KubeSpawner.node_selector = {"minidocker.dev/course": "true"}
c.KubeSpawner.container_security_context = {
    "capabilities": {"add": ["SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "IPC_LOCK"]},
    "seccompProfile": {"type": "Unconfined"},
    "appArmorProfile": {"type": "Unconfined"},
    "allowPrivilegeEscalation": True,
}
c.KubeSpawner.volumes = [
    {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "4Gi"}},
    {"name": "cgroup", "hostPath": {"path": "/sys/fs/cgroup", "type": "Directory"}},
]
c.KubeSpawner.volume_mounts = [
    {"name": "tmp", "mountPath": "/tmp"},
    {"name": "cgroup", "mountPath": "/sys/fs/cgroup"},
]
c.KubeSpawner.cpu_limit = 2
c.KubeSpawner.mem_limit = "4G"
# the learner's copy of the course, made at the pod's start (never the instructor's notebooks)
c.KubeSpawner.cmd = ["sh", "-c", "python3 -m minidocker.lab.course learner /grader/notebooks ~/course && "
                     "exec jupyterhub-singleuser --ServerApp.root_dir=~/course"]
