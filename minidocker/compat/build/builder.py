"""`docker build`: run a Dockerfile, one instruction at a time, one image per step.

The classic builder's loop, which every Dockerfile tutorial describes:

    FROM      start from an image (or `scratch`, or an earlier stage)
    RUN       start a container on the current image, run the command, commit its
              changes as a new layer -> a new image
    COPY/ADD  write the files into a new layer directly (no container needed)
    ENV, CMD, WORKDIR, ARG, ...   change only the config -> a new image with no new layer
              (committed through a container that is created on the parent, never started)

Each step's result is kept as an (untagged) intermediate image, and a *cache* maps
(parent image, what the step does) -> that image. Run the build again and unchanged
steps print "Using cache"; change a step and it, and every step after it, runs again.
That is why `COPY requirements.txt` goes before `COPY . .` in a good Dockerfile.

For RUN the key is the command text (plus build args it sees); for COPY/ADD it is a
checksum of the copied files' content and metadata -- not their mtimes, so a fresh
git checkout still hits the cache.
"""
from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import os
import re
import stat
import time
from contextlib import contextmanager

from ... import fsutil, progress
from ...gotime import rfc3339nano
from ...errors import MinidockerError
from ...images import reference as refmod
from ...images.platform import host_architecture
from ...images.store import Image
from . import dockerfile as dfmod
from .ignore import DockerIgnore

# What only a step that runs a container or writes a layer needs (tarfile, tempfile, the
# engine's verbs, runconfig) is imported where it is used: a fully cached rebuild does neither.

DEFAULT_SHELL = ["/bin/sh", "-c"]
# instructions that only change the image config ("#(nop)" in docker history)
CONFIG_ONLY = {"ENV", "LABEL", "WORKDIR", "USER", "EXPOSE", "CMD", "ENTRYPOINT", "VOLUME",
               "STOPSIGNAL", "HEALTHCHECK", "SHELL", "ONBUILD", "MAINTAINER", "ARG"}


class BuildError(MinidockerError):
    exit_code = 1


# ------------------------------------------------------------------ the config effects (pure)
def apply_config_instruction(cfg: dict, ins, env: dict, state: dict | None = None) -> None:
    """Apply a config-only instruction (already substituted) to an image's "config" dict.

    Shared with `import --change` / `commit --change`. `state` carries what a build stage
    remembers between instructions (cmd_set, shell)."""
    from ...container.runconfig import parse_signal, replace_or_append
    state = state if state is not None else {}
    c = ins.cmd
    shell = state.get("shell") or cfg.get("Shell") or DEFAULT_SHELL
    if c == "ENV":
        cfg["Env"] = replace_or_append(cfg.get("Env") or [], [f"{k}={v}" for k, v in ins.pairs])
    elif c == "LABEL":
        cfg["Labels"] = {**(cfg.get("Labels") or {}), **dict(ins.pairs)}
    elif c == "WORKDIR":
        wd = ins.args[0]
        if not wd.startswith("/"):  # relative to the previous WORKDIR
            wd = os.path.normpath(os.path.join(cfg.get("WorkingDir") or "/", wd))
        cfg["WorkingDir"] = wd
    elif c == "USER":
        cfg["User"] = ins.args[0]
    elif c == "EXPOSE":
        ports = cfg.get("ExposedPorts") or {}
        for p in dfmod.parse_ports(ins.args):
            ports[p] = {}
        cfg["ExposedPorts"] = ports
    elif c == "CMD":
        cfg["Cmd"] = dfmod.instruction_argv(ins, shell)
        state["cmd_set"] = True
    elif c == "ENTRYPOINT":
        cfg["Entrypoint"] = dfmod.instruction_argv(ins, shell) if ins.args and ins.args != [""] else None
        if not state.get("cmd_set"):
            cfg["Cmd"] = None  # an ENTRYPOINT resets the CMD it inherited (moby dispatchEntrypoint)
    elif c == "VOLUME":
        vols = cfg.get("Volumes") or {}
        for v in ins.args:
            if not v:
                raise BuildError("VOLUME specified can not be an empty string")
            vols[v] = {}
        cfg["Volumes"] = vols
    elif c == "STOPSIGNAL":
        parse_signal(ins.args[0])
        cfg["StopSignal"] = ins.args[0]
    elif c == "HEALTHCHECK":
        cfg["Healthcheck"] = ins.healthcheck
    elif c == "SHELL":
        cfg["Shell"] = list(ins.args)
        state["shell"] = list(ins.args)
    elif c == "ONBUILD":
        cfg["OnBuild"] = (cfg.get("OnBuild") or []) + [ins.trigger]
    elif c == "MAINTAINER":
        state["author"] = ins.args[0]
    elif c == "ARG":
        pass  # ARG only changes the build environment
    else:
        raise BuildError(f"{c} is not a config instruction")


def nop_created_by(ins, shell: list[str]) -> str:
    """What `docker history` shows for a config-only step: `/bin/sh -c #(nop)  CMD ["sh"]`."""
    text = ins.original.split(None, 1)
    body = text[1] if len(text) > 1 else ""
    kw = ins.cmd
    if kw in ("CMD", "ENTRYPOINT", "SHELL"):
        argv = list(ins.args) if ins.exec_form or kw == "SHELL" else dfmod.cmd_shell_form(shell, " ".join(ins.args))
        # Go's %q of a []string: ["a" "b"]
        return f"{' '.join(shell)} #(nop)  {kw} [{' '.join(json.dumps(a) for a in argv)}]"
    if kw in ("ENV", "LABEL"):
        return f"{' '.join(shell)} #(nop)  {kw} " + " ".join(f"{k}={v}" for k, v in ins.pairs)
    if kw == "ARG":  # the defaults as written (substituted), never a --build-arg: `ARG A B=2`
        return f"{' '.join(shell)} #(nop)  ARG " + " ".join(k if v is None else f"{k}={v}" for k, v in ins.pairs)
    return f"{' '.join(shell)} #(nop) {kw} {body}".rstrip()


# ------------------------------------------------------------------ the build context
_scoped = fsutil.scoped_path  # (shared with volume mounts)


def file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class Context:
    """The build context directory, seen through .dockerignore."""

    def __init__(self, path: str, dockerfile_rel: str):
        self.root = os.path.realpath(path)
        self.ignore = DockerIgnore.from_dir(self.root)
        self.dockerfile_rel = dockerfile_rel
        # what `docker build` would send: .dockerignore applied once, exceptions included
        self.files = set(self.ignore.walk(self.root, dockerfile_rel))

    def included(self, rel: str) -> bool:
        rel = os.path.normpath(rel)
        return rel in (".", "") or rel in self.files

    def sources(self, pattern: str) -> list[str]:
        """Context-relative paths matching a COPY source (globs allowed)."""
        pat = os.path.normpath(pattern.lstrip("/")) if pattern not in ("/", ".", "./") else "."
        if pat.startswith(".."):
            raise BuildError(f"forbidden path outside the build context: {pattern} ()")
        if not any(ch in pat for ch in "*?["):
            full = _scoped(self.root, pat)
            if not os.path.lexists(full):
                raise BuildError(f"COPY failed: file not found in build context or excluded by "
                                 f".dockerignore: stat {pat}: file does not exist")
            rel = os.path.relpath(full, self.root)
            if not self.included(rel):
                raise BuildError(f"COPY failed: file not found in build context or excluded by "
                                 f".dockerignore: stat {pat}: file does not exist")
            return [rel]
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                rel = os.path.relpath(os.path.join(dirpath, name), self.root)
                if (fnmatch.fnmatchcase(rel, pat) and self.included(rel)
                        and "/" not in rel[len(os.path.dirname(pat)):].lstrip("/")):
                    found.append(rel)
        if not found:
            raise BuildError("COPY failed: no source files were specified")
        return found


# ------------------------------------------------------------------ the builder
class Builder:
    def __init__(self, runtime, context: str, dockerfile: str | None = None, tags: list[str] = (),
                 build_args: dict | None = None, target: str | None = None, no_cache: bool = False,
                 pull: bool = False, platform: str | None = None, network: str = "default",
                 labels: dict | None = None, on_event=None):
        self.rt = runtime
        self.store = runtime.images
        if not os.path.isdir(context):
            raise BuildError(f"unable to prepare context: path \"{context}\" not found")
        df_path = dockerfile or os.path.join(context, "Dockerfile")
        if dockerfile and not os.path.isabs(dockerfile) and not os.path.exists(dockerfile):
            df_path = os.path.join(context, dockerfile)
        if not os.path.isfile(df_path):
            raise BuildError(f"unable to prepare context: unable to evaluate symlinks in Dockerfile "
                             f"path: lstat {os.path.abspath(df_path)}: no such file or directory")
        self.df_path = df_path
        self.filename = os.path.basename(df_path)
        with open(df_path, "rb") as f:
            text = dfmod.decode(f.read(), self.filename)
        self.build_args = dict(build_args or {})
        if platform and platform != dfmod.host_platform():
            raise BuildError(f"platform {platform} is not supported: minidocker builds for this "
                             f"machine only ({dfmod.host_platform()}); there is no emulation")
        self.df = dfmod.parse(text, self.build_args, filename=self.filename)
        self.ctx = Context(context, os.path.relpath(os.path.realpath(df_path), os.path.realpath(context)))
        self.tags = [str(refmod.parse(t)) for t in tags]
        self.target = target
        self.no_cache = no_cache
        self.pull = pull
        self.network = network
        self.labels = labels or {}
        self.emit = on_event or (lambda ev: None)
        self.step = 0
        self.bar = None
        self.used_args: set[str] = set()
        self.stage_images: dict[int, Image] = {}

    def say(self, text: str) -> None:
        self.emit({"stream": text})

    # -------------------------------------------------------------- the main loop
    def build(self) -> str:
        """Run the build; return the final image id. (Holds ImageStore.working() meanwhile.)

        In a Jupyter kernel a bar counts the steps; a terminal has the Step N/M lines."""
        self.bar = progress.bar("Build steps", self.df.total_steps(), unit="step", kernel_only=True)
        try:
            with self.store.working():
                return self._build()
        finally:
            if self.bar:
                self.bar.close()

    def _build(self) -> str:
        last = dfmod.stage_for_target(self.df, self.target) if self.target else len(self.df.stages) - 1
        total = self.df.total_steps()
        self.total = total
        for ins in self.df.meta_args:
            self._begin(ins.original)
        for stage in self.df.stages[:last + 1]:
            self.stage_images[stage.index] = self._build_stage(stage)
        final = self.stage_images[last]
        if self.labels:
            final = self._commit_config(final, lambda cfg: cfg.update(
                Labels={**(cfg.get("Labels") or {}), **self.labels}), "LABEL (build --label)")
        unused = sorted(set(self.build_args) - self.used_args - set(self.df.global_arg_values))
        if unused:
            self.say(f"[Warning] One or more build-args {unused} were not consumed\n")
        self.say(f"Successfully built {final.short_id}\n")
        for t in self.tags:
            self.store.tag(t, final.id)
            self.say(f"Successfully tagged {t}\n")
        return final.id

    def _begin(self, original: str) -> None:
        self.step += 1
        self.say(f"Step {self.step}/{self.total} : {original}\n")
        if self.bar:
            self.bar.update(1)

    def _build_stage(self, stage) -> Image:
        self._begin(stage.original)
        img = self._base_image(stage)
        self.say(f" ---> {img.short_id}\n")
        env_args: dict[str, str] = {}  # ARG values in scope for this stage
        state = {"shell": None, "cmd_set": False}
        # the base image's ONBUILD triggers run first (and are consumed)
        triggers = (img.config.get("config") or {}).get("OnBuild") or []
        if triggers:
            self.say(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
            img = self._commit_config(img, lambda cfg: cfg.update(OnBuild=None), None)
            for t in triggers:
                img = self._dispatch(img, dfmod.parse_instruction(t, filename=self.filename), env_args, state, True)
        for ins in stage.instructions:
            self._begin(ins.original)
            img = self._dispatch(img, ins, env_args, state, False)
            self.say(f" ---> {img.short_id}\n")
        return img

    def _base_image(self, stage) -> Image:
        if stage.base_stage is not None:
            return self.stage_images[stage.base_stage]
        if stage.is_scratch:
            # "scratch" is no image at all: an empty config, never stored (same id every time,
            # so the first step after it can hit the cache)
            raw = json.dumps({"architecture": host_architecture(), "os": "linux", "config": {},
                              "rootfs": {"type": "layers", "diff_ids": []}}, separators=(",", ":")).encode()
            return Image("sha256:" + hashlib.sha256(raw).hexdigest(), json.loads(raw), raw)
        if self.pull:
            from ...images import busybox, registry
            if not busybox.is_embedded(stage.base):
                registry.pull(self.store, stage.base, say=lambda s: self.say(s + "\n"))
        return self.rt.image(stage.base)

    def _env(self, img: Image, env_args: dict) -> dict:
        env = dict(env_args)
        for kv in (img.config.get("config") or {}).get("Env") or []:
            k, _, v = kv.partition("=")
            env[k] = v
        return env

    def _dispatch(self, img: Image, ins, env_args: dict, state: dict, trigger: bool) -> Image:
        try:
            if ins.cmd == "ARG":
                return self._arg(img, ins, env_args, state)
            x = dfmod.expand_instruction(ins, self._env(img, env_args), self.filename)
            if x.cmd == "WORKDIR":
                return self._workdir(img, x, env_args, state)
            if x.cmd in CONFIG_ONLY:
                shell = state.get("shell") or (img.config.get("config") or {}).get("Shell") or DEFAULT_SHELL

                def change(cfg):
                    apply_config_instruction(cfg, x, env_args, state)
                return self._commit_config(img, change, nop_created_by(x, shell),
                                           author=state.get("author"), step=True)
            if x.cmd == "RUN":
                return self._run(img, x, env_args, state)
            if x.cmd in ("COPY", "ADD"):
                return self._copy(img, x, env_args)
            if x.cmd == "FROM":
                raise BuildError("FROM cannot be used as a build trigger")
            raise BuildError(f"unknown instruction: {x.cmd}")
        except dfmod.DockerfileError:
            raise
        except OSError as e:
            raise BuildError(f"{ins.cmd} failed: {e.strerror}: {e.filename or ''}".rstrip(": ")) from None
        except MinidockerError as e:
            if isinstance(e, BuildError) and str(e).startswith(self.filename):
                raise
            raise BuildError(str(e)) from None

    # -------------------------------------------------------------- caching
    def _cache_path(self, parent: str, key: str) -> str:
        h = hashlib.sha256(f"{parent}\n{key}".encode()).hexdigest()
        return os.path.join(self.store.root.image_dir, "buildcache", h)

    def _cached(self, parent: Image, key: str) -> Image | None:
        if self.no_cache:
            return None
        image_id = fsutil.read_text(self._cache_path(parent.id, key))
        if not image_id:
            return None
        try:
            img = self.store.get(image_id.strip())
        except MinidockerError:
            return None
        self.say(" ---> Using cache\n")
        return img

    def _remember(self, parent: Image, key: str, child: Image) -> None:
        # not durable: a cache entry lost in a crash only costs a rebuild of the step
        path = self._cache_path(parent.id, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fsutil.write_atomic(path, child.id, durable=False)
        self.store.set_parent(child.id, parent.id)

    # -------------------------------------------------------------- steps
    def _new_config(self, img: Image, created_by: str | None, layer_diff_id: str | None,
                    change=None, author: str | None = None) -> dict:
        cfg = json.loads(img.raw)
        cfg.setdefault("config", {})
        if change:
            change(cfg["config"])
        now = rfc3339nano(time.time_ns())
        cfg["created"] = now
        if author:
            cfg["author"] = author
        if created_by is not None:
            h = {"created": now, "created_by": created_by}
            if layer_diff_id is None:
                h["empty_layer"] = True
            cfg["history"] = (cfg.get("history") or []) + [h]
        if layer_diff_id:
            cfg.setdefault("rootfs", {"type": "layers", "diff_ids": []})["diff_ids"] = \
                list(cfg["rootfs"].get("diff_ids", [])) + [layer_diff_id]
        cfg.pop("container", None)
        cfg.pop("container_config", None)
        return cfg

    def _commit_config(self, img: Image, change, created_by: str | None, key: str | None = None,
                       author: str | None = None, step: bool = False) -> Image:
        """A new image with the same layers and a changed config (`step`: a Dockerfile
        instruction's, which prints what Docker's classic builder prints for it)."""
        key = key or f"CONFIG {created_by}"
        hit = self._cached(img, key)
        if hit:
            return hit
        cid = None
        if step:
            # Docker's classic builder commits a config-only step through a container it
            # creates (never starts) on the parent image and then removes; so do we, so that
            # the build says what really happened, line for line as Docker does.
            cid = self.rt.create(img.id, ["/bin/sh", "-c", created_by or ""], entrypoint="", network="none")
            self.say(f" ---> Running in {cid[:12]}\n")
        try:
            cfg = self._new_config(img, created_by, None, change, author)
            new = self.store.put_image(json.dumps(cfg, separators=(",", ":")).encode())
        finally:
            if cid:
                self.say(f"Removing intermediate container {cid[:12]}\n")
                self.rt.remove(cid, force=True, volumes=True)
        if created_by:
            self._remember(img, key, new)
        return new

    def _workdir(self, img: Image, x, env_args: dict, state: dict) -> Image:
        """WORKDIR changes the config and, as Docker's classic builder does (dispatchWorkdir:
        ContainerCreateWorkdir, then a commit), creates the directory: a directory that is not
        in the image yet makes a layer of its own (the missing directories, root's, 0755); an
        existing one makes an empty layer."""
        shell = state.get("shell") or (img.config.get("config") or {}).get("Shell") or DEFAULT_SHELL
        created_by = nop_created_by(x, shell)
        key = f"CONFIG {created_by}"
        hit = self._cached(img, key)
        if hit:
            return hit

        def change(cfg):
            apply_config_instruction(cfg, x, env_args, state)
        probe = dict(img.config.get("config") or {})
        change(probe)
        parts = [p for p in probe["WorkingDir"].split("/") if p]
        cid = self.rt.create(img.id, ["/bin/sh", "-c", created_by], entrypoint="", network="none")
        self.say(f" ---> Running in {cid[:12]}\n")
        try:
            missing: list[str] = []
            with self.store.image_rootfs(img) as root:
                for i in range(1, len(parts) + 1):
                    found = _scoped(root, "/".join(parts[:i]))
                    if not os.path.lexists(found):
                        base = os.path.relpath(os.path.dirname(found), root)
                        base = "" if base == "." else base + "/"
                        missing = [base + "/".join(parts[i - 1:j]) for j in range(i, len(parts) + 1)]
                        break
            diff_id = None
            if missing:
                now = int(time.time())
                chain = self._layer_from_entries([_dir_entry(d, 0o755, 0, 0, now) for d in missing], img, "workdir-")
                diff_id = self.store.layer_diff_id(chain)
            cfg = self._new_config(img, created_by, diff_id, change, state.get("author"))
            new = self.store.put_image(json.dumps(cfg, separators=(",", ":")).encode())
        finally:
            self.say(f"Removing intermediate container {cid[:12]}\n")
            self.rt.remove(cid, force=True, volumes=True)
        self._remember(img, key, new)
        return new

    def _arg(self, img: Image, ins, env_args: dict, state: dict) -> Image:
        """ARG in a stage: declare the names (a --build-arg wins over a default), and commit
        a config-only image, as Docker's classic builder does: `/bin/sh -c #(nop)  ARG V=1`.
        Its cache key is that text, so a different --build-arg still hits the cache here;
        the later RUN steps' keys hold the values (`|1 V=2 /bin/sh -c ...`)."""
        env = self._env(img, env_args)  # the whole line is substituted first: `ARG A=1 B=$A`
        shown = []                      # gives B the $A from *before* this line, as in Docker
        for name, default in ins.pairs:
            value = dfmod.resolve_arg(name, default, self.build_args, self.df.global_arg_values,
                                      env, ins.escape)
            if name in self.build_args:
                self.used_args.add(name)
            if value is not None:
                env_args[name] = value
            else:
                env_args.pop(name, None)
            shown.append((name, None if default is None else dfmod.expand(default, env, ins.escape)))
        shell = state.get("shell") or (img.config.get("config") or {}).get("Shell") or DEFAULT_SHELL
        return self._commit_config(img, lambda cfg: None, nop_created_by(dfmod.replace(ins, pairs=shown), shell),
                                   author=state.get("author"), step=True)

    def _run(self, img: Image, x, env_args: dict, state: dict) -> Image:
        shell = state.get("shell") or (img.config.get("config") or {}).get("Shell") or DEFAULT_SHELL
        argv = dfmod.instruction_argv(x, shell)
        # build args are visible to RUN as environment variables (and are part of the cache key)
        visible = {k: v for k, v in env_args.items()
                   if not any(e.startswith(k + "=") for e in (img.config.get("config") or {}).get("Env") or [])}
        prefix = f"|{len(visible)} " + " ".join(f"{k}={v}" for k, v in sorted(visible.items())) + " " if visible else ""
        created_by = prefix + " ".join(argv)
        hit = self._cached(img, "RUN " + created_by)
        if hit:
            return hit
        from ...container.runconfig import replace_or_append
        cfg = img.config.get("config") or {}
        env = replace_or_append(cfg.get("Env") or [], [f"{k}={v}" for k, v in visible.items()])
        cid = self.rt.create(img.id, argv, entrypoint="", env=[],
                             workdir=cfg.get("WorkingDir") or None, user=cfg.get("User") or None,
                             network=self.network, attach=True)
        try:
            with self.rt.containers.update(cid) as rec:  # the exact environment, no image merging
                rec["Config"]["Env"] = env
            self.say(f" ---> Running in {cid[:12]}\n")
            code = self._run_attached(cid)
            if code != 0:
                raise BuildError(f"The command '{' '.join(argv)}' returned a non-zero code: {code}")
            from ...engine import changes
            upper, _ = changes._upper_and_lowers(self.rt, cid)
            # a RUN that changed no file makes no layer: Docker's NewChildImage drops an empty
            # layer (layer.IsEmpty) and marks the history entry "empty_layer": true
            chain = self._layer_from_dir(upper, img, shifted=True) if os.listdir(upper) else None
        finally:
            self.say(f"Removing intermediate container {cid[:12]}\n")
            self.rt.remove(cid, force=True, volumes=True)  # (Docker removes its anonymous volumes too)
        new_cfg = self._new_config(img, created_by, self.store.layer_diff_id(chain) if chain else None)
        new = self.store.put_image(json.dumps(new_cfg, separators=(",", ":")).encode())
        self._remember(img, "RUN " + created_by, new)
        return new

    def _run_attached(self, cid: str) -> int:
        """Run the step's container with its output coming back to us as build events."""
        r, w = os.pipe()
        try:
            started = self.rt.start(cid, attach=(-1, w, w))
        finally:
            os.close(w)
        with os.fdopen(r, "rb") as out:
            for line in out:
                self.emit({"stream": line.decode("utf-8", "replace")})
        code = started.wait_exit() if started else None
        if code is None:
            code = self.rt.inspect(cid)["State"]["ExitCode"]
        return code

    def _layer_from_dir(self, upper: str, parent: Image, shifted: bool = False) -> str:
        """`shifted`: a RUN step's upper dir, whose owners a --userns-remap root shifted."""
        from tempfile import mkstemp
        from ...engine import remap
        from ...storage import archive
        fd, tar = mkstemp(prefix="step-", suffix=".tar", dir=self.store.root.tmp)
        try:
            with os.fdopen(fd, "wb") as f:
                maps = remap.idmaps(self.store.root.root) if shifted else None
                archive.export_dir(upper, f, overlay=True, idmaps=maps)
            return self.store.register_layer(tar, parent.top_chain_id)
        finally:
            os.unlink(tar)

    def _layer_from_entries(self, entries: list, parent: Image, prefix: str) -> str:
        """A layer of tar entries (callables that add themselves to a TarFile) on `parent`."""
        # (tarfile and tempfile only when a step makes a layer: a cached rebuild makes none)
        from tarfile import PAX_FORMAT, TarFile
        from tempfile import mkstemp
        fd, tar = mkstemp(prefix=prefix, suffix=".tar", dir=self.store.root.tmp)
        try:
            with os.fdopen(fd, "wb") as f, TarFile.open(fileobj=f, mode="w", format=PAX_FORMAT) as tf:
                for entry in entries:
                    entry(tf)
            return self.store.register_layer(tar, parent.top_chain_id)
        finally:
            os.unlink(tar)

    # -------------------------------------------------------------- COPY / ADD
    def _copy(self, img: Image, x, env_args: dict) -> Image:
        cfg = img.config.get("config") or {}
        dest = x.dest
        # "." and "dir/" name a directory; so does a path that is a directory in the image
        # (asked of the image only when the step is built: see below)
        as_dir = dest.endswith("/") or dest in (".", "..") or dest.endswith(("/.", "/.."))
        if not dest.startswith("/"):
            dest = os.path.join(cfg.get("WorkingDir") or "/", dest)
        dest = os.path.normpath(dest)
        if as_dir or dest == "/":
            dest = dest.rstrip("/") + "/"
        chown = x.flags.get("chown")
        chmod = x.flags.get("chmod")
        uid = gid = 0
        if chown:
            uid, gid = self._resolve_chown(img, chown)
        tail = f"{dest} {chown or ''} {chmod or ''}"
        other = self._source_image(x)
        # Files from an image (--from) are that image's, which never change (its id names its
        # layers' content): the step is also remembered by that id, and found without a mount.
        by_image = f"{x.cmd} --from={other.id} {json.dumps(x.sources)} {tail}" if other else None
        hit = by_image and self._cached(img, by_image)
        if hit:
            return hit
        with self._source_root(other) as (root, selector):
            items = []  # ("PATH", relpath under root) or ("URL", url)
            for s in x.sources:
                if x.cmd == "ADD" and s.startswith(("http://", "https://")):
                    items.append(("URL", s))
                    continue
                for rel in selector(s):
                    items.append(("PATH", rel))
            # The key names dest as written. Whether it is a directory of the parent image is
            # the parent's to say (its id is in the key), and asking needs a mount: it is asked
            # only when the step is not in the cache. Until then the entries take one source
            # to dest as written, several into it as a directory (the checksum is the same).
            guess = dest if dest.endswith("/") or len(items) == 1 else dest + "/"
            entries, checksum = self._plan_copy(root, items, guess, x, uid, gid, chmod)
            key = f"{x.cmd} {checksum} {tail}"
            hit = self._cached(img, key)
            if not hit and not dest.endswith("/") and self._is_dir(img, dest):
                dest += "/"  # (an older minidocker's entry has this slash in its key)
                hit = self._cached(img, f"{x.cmd} {checksum} {dest} {chown or ''} {chmod or ''}")
            if hit:
                if by_image:
                    self._remember(img, by_image, hit)
                return hit
            if dest != guess:
                entries, _ = self._plan_copy(root, items, dest, x, uid, gid, chmod)
            # the entries read the sources: write the layer while they are still there
            chain = self._layer_from_entries(entries, img, "copy-")
        copies_dir = len(items) > 1 or any(k == "PATH" and os.path.isdir(os.path.join(root, r)) for k, r in items)
        kind = "dir" if copies_dir else "file"
        created_by = f"/bin/sh -c #(nop) {x.cmd} {kind}:{checksum} in {dest} "
        new_cfg = self._new_config(img, created_by, self.store.layer_diff_id(chain))
        new = self.store.put_image(json.dumps(new_cfg, separators=(",", ":")).encode())
        self._remember(img, key, new)
        if by_image:
            self._remember(img, by_image, new)
        return new

    def _is_dir(self, img: Image, path: str) -> bool:
        """Is the absolute `path` a directory (not a link to one) in the image?"""
        with self.store.image_rootfs(img) as root:
            found = _scoped(root, path.lstrip("/"))
            return os.path.isdir(found) and not os.path.islink(found) and found != root

    def _source_image(self, x) -> Image | None:
        """The image COPY --from reads (a stage's or any image); None: the build context."""
        src = x.flags.get("from")
        if not src:
            return None
        idx = dfmod.resolve_stage_ref(self.df, src, self._current_stage(x))
        return self.stage_images[idx] if idx is not None else self.rt.image(src)

    @contextmanager
    def _source_root(self, other: Image | None):
        """Where COPY reads from: the context, or (--from) a stage's or an image's filesystem."""
        if other is None:
            yield self.ctx.root, self.ctx.sources
            return
        with self.store.image_rootfs(other) as root:
            def select(pattern: str) -> list[str]:
                pat = os.path.normpath(pattern.lstrip("/")) or "."
                if any(ch in pat for ch in "*?["):
                    base = os.path.dirname(pat)
                    folder = _scoped(root, base)
                    hits = sorted(os.path.join(base, n) for n in os.listdir(folder)
                                  if fnmatch.fnmatchcase(os.path.join(base, n), pat)) if os.path.isdir(folder) else []
                    if not hits:
                        raise BuildError("COPY failed: no source files were specified")
                    return hits
                full = _scoped(root, pat)
                if not os.path.lexists(full):
                    raise BuildError(f"COPY failed: stat {pattern}: file does not exist")
                return [os.path.relpath(full, root)]
            yield root, select

    def _current_stage(self, x) -> int:
        for s in self.df.stages:
            if x.line >= s.line:
                cur = s.index
        return cur

    def _resolve_chown(self, img: Image, chown: str) -> tuple[int, int]:
        from ...container.runconfig import resolve_user
        user, _, group = chown.partition(":")
        with self.store.image_rootfs(img) as root:
            def read(p):
                try:
                    with open(_scoped(root, p)) as f:
                        return f.read()
                except OSError:
                    return ""
            passwd, groupf = read("etc/passwd"), read("etc/group")
        try:
            uid, gid, _, _ = resolve_user(f"{user}:{group}" if group else user, passwd, groupf)
        except MinidockerError as e:
            raise BuildError(f"unable to convert uid/gid chown string to host mapping: {e}") from None
        if not group:
            gid = uid if user.isdigit() and not any(ln.split(":")[0] == user for ln in passwd.splitlines()) else gid
        return uid, gid

    def _plan_copy(self, root: str, items: list, dest: str, x, uid: int, gid: int, chmod: str | None):
        """Decide every tar entry of the new layer (as callables) and the cache checksum."""
        h = hashlib.sha256()
        entries = []
        many = len(items) > 1 or any(kind == "PATH" and os.path.isdir(os.path.join(root, rel)) and
                                     not os.path.islink(os.path.join(root, rel)) for kind, rel in items)
        dest_is_dir = dest.endswith("/") or len(items) > 1
        if len(items) > 1 and not dest.endswith("/"):
            raise BuildError("When using COPY with more than one source file, the destination must "
                             "be a directory and end with a /")
        dest = dest.rstrip("/") or "/"
        mode_override = parse_chmod(chmod) if chmod else None
        made_dirs: set[str] = set()

        def parent_dirs(path: str):
            parts = path.strip("/").split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in made_dirs:
                    made_dirs.add(d)
                    entries.append(_dir_entry(d, 0o755, 0, 0, None))

        for kind, rel in items:
            if kind == "URL":
                name = rel.rstrip("/").rsplit("/", 1)[-1] or "index.html"
                target = (dest + "/" + name) if dest_is_dir else dest
                data = _download(rel)
                h.update(f"url:{rel}:{hashlib.sha256(data).hexdigest()}".encode())
                parent_dirs(target)
                entries.append(_file_entry(target.lstrip("/"), data, 0o600 if mode_override is None else mode_override,
                                           uid, gid))
                continue
            src = os.path.join(root, rel)
            st_ = os.lstat(src)
            if x.cmd == "ADD" and stat.S_ISREG(st_.st_mode) and _is_archive(src):
                h.update(f"archive:{rel}:{file_digest(src)}".encode())
                target = dest
                parent_dirs(target + "/x")
                entries.append(_extract_entries(src, target.lstrip("/")))
                continue
            if stat.S_ISDIR(st_.st_mode):
                # a directory: its *contents* go into dest (Docker's rule, not cp -r's)
                base = dest
                parent_dirs(base + "/x")
                if base.strip("/"):
                    dir_mode = mode_override or stat.S_IMODE(st_.st_mode)
                    entries.append(_dir_entry(base.strip("/"), dir_mode, uid, gid, None))
                    made_dirs.add(base.strip("/"))
                for dirpath, dirnames, filenames in os.walk(src):
                    dirnames.sort()
                    for name in sorted(dirnames + filenames):
                        p = os.path.join(dirpath, name)
                        crel = os.path.relpath(p, root)
                        if root == self.ctx.root and not self.ctx.included(crel):
                            if os.path.isdir(p) and not os.path.islink(p):
                                dirnames.remove(name) if name in dirnames else None
                            continue
                        target = (base.strip("/") + "/" if base.strip("/") else "") + os.path.relpath(p, src)
                        entries.append(self._path_entry(p, target, uid, gid, mode_override, h, crel))
            else:
                target = (dest + "/" + os.path.basename(rel)) if dest_is_dir or (many and len(items) > 1) else dest
                parent_dirs(target)
                entries.append(self._path_entry(src, target.lstrip("/"), uid, gid, mode_override, h, rel))
        return entries, h.hexdigest()

    def _path_entry(self, path: str, target: str, uid: int, gid: int, mode: int | None, h, rel: str):
        st_ = os.lstat(path)
        m = mode if mode is not None else stat.S_IMODE(st_.st_mode)
        if stat.S_ISLNK(st_.st_mode):
            link = os.readlink(path)  # copied as a link, never followed: no host file leaks in
            h.update(f"L {rel} {link}\n".encode())
            return _link_entry(target, link, uid, gid)
        if stat.S_ISDIR(st_.st_mode):
            h.update(f"D {rel} {m:o}\n".encode())
            return _dir_entry(target, m, uid, gid, None)
        if stat.S_ISREG(st_.st_mode):
            h.update(f"F {rel} {m:o} {st_.st_size} {file_digest(path)}\n".encode())
            return _disk_file_entry(target, path, m, uid, gid, int(st_.st_mtime))
        raise BuildError(f"cannot copy {rel}: not a regular file, directory or symlink")


def parse_chmod(text: str) -> int:
    """COPY/ADD --chmod=<octal>, as BuildKit reads it (strconv.ParseUint(text, 8, 32), at most
    07777). BuildKit's message."""
    if not re.fullmatch(r"[0-7]{1,5}", text) or int(text, 8) > 0o7777:
        raise BuildError(f"invalid chmod parameter: '{text}'. it should be octal string and between 0 and 07777")
    return int(text, 8)


def _dir_entry(name: str, mode: int, uid: int, gid: int, mtime):
    def add(tf):
        from tarfile import DIRTYPE, TarInfo
        info = TarInfo(name)
        info.type, info.mode, info.uid, info.gid = DIRTYPE, mode, uid, gid
        info.mtime = mtime or 0
        tf.addfile(info)
    return add


def _file_entry(name: str, data: bytes, mode: int, uid: int, gid: int):
    def add(tf):
        from tarfile import TarInfo
        info = TarInfo(name)
        info.size, info.mode, info.uid, info.gid, info.mtime = len(data), mode, uid, gid, 0
        tf.addfile(info, io.BytesIO(data))
    return add


def _disk_file_entry(name: str, path: str, mode: int, uid: int, gid: int, mtime: int):
    def add(tf):
        from tarfile import TarInfo
        info = TarInfo(name)
        info.size, info.mode, info.uid, info.gid, info.mtime = os.path.getsize(path), mode, uid, gid, mtime
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            tf.addfile(info, f)
    return add


def _link_entry(name: str, link: str, uid: int, gid: int):
    def add(tf):
        from tarfile import SYMTYPE, TarInfo
        info = TarInfo(name)
        info.type, info.linkname, info.uid, info.gid, info.mode = SYMTYPE, link, uid, gid, 0o777
        tf.addfile(info)
    return add


def _is_archive(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(262)
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"


def _extract_entries(path: str, dest: str):
    """ADD of a local archive: its members, re-rooted under `dest` (safely: no `..`).
    A corrupt or truncated archive is a build error (Docker: "Error processing tar file"),
    checked as strictly as a layer (storage/archive.py)."""
    def add(tf):
        from tarfile import TarFile
        from ...storage import archive
        try:
            with archive.open_layer_stream(path) as raw:
                stream = archive.TailReader(raw)
                with TarFile.open(fileobj=stream, mode="r|") as src:
                    for m in src:
                        name = os.path.normpath(m.name).lstrip("/")
                        if name.startswith("..") or name == "." or "\x00" in name:
                            continue
                        m.name = f"{dest}/{name}".lstrip("/") if dest else name
                        if m.islnk():
                            m.linkname = f"{dest}/{os.path.normpath(m.linkname).lstrip('/')}".lstrip("/")
                        tf.addfile(m, src.extractfile(m) if m.isreg() else None)
                    archive.check_end(stream.bytes_at, src.offset)
        except (*archive.TAR_ERRORS, OSError, ValueError) as e:
            if isinstance(e, OSError) and e.errno is not None:
                raise
            if isinstance(e, MinidockerError):
                raise BuildError(f"ADD failed: {os.path.basename(path)}: {e}") from None
            raise BuildError(f"ADD failed: {os.path.basename(path)}: Error processing tar file: {e}") from None
    return add


def _download(url: str) -> bytes:
    import urllib.error
    import urllib.request
    from ...core import rootless  # (rootless mode: fetched from the host's network namespace)
    try:
        with urllib.request.build_opener(*rootless.url_handlers()).open(url, timeout=30) as resp:
            return resp.read()
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise BuildError(f"ADD failed: failed to GET {url}: {reason} (is this machine offline?)") from None
