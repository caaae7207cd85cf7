"""`minidocker scan IMAGE`: what an image contains, and which of it has known vulnerabilities.

A scanner does two things, like Trivy, Grype or `docker scout cves`:
1. an inventory (an SBOM, software bill of materials): the packages installed in the image,
   read from the package managers' own records in its filesystem:
       /var/lib/dpkg/status            Debian, Ubuntu (dpkg)
       /lib/apk/db/installed           Alpine (apk)
       .../site-packages/*.dist-info   Python packages (pip), METADATA's Name and Version
   written as CycloneDX JSON;
2. a match of that inventory against advisories, here in the OSV format (osv.dev: one JSON
   object per vulnerability, naming the ecosystem, the package and the affected version
   ranges). Version order is each ecosystem's own: dpkg's (1.0~rc1 < 1.0 < 1.0-1 < 1:0.1),
   apk's (1.2_rc1 < 1.2 < 1.2-r1), PEP 440's.

Nothing is downloaded: the advisories are a file you give (`--advisories`), so a class can
write its own and a CI job can pin its database. Pure functions but read_packages() (which
reads files under a root directory). Taught with the security notebook (the seed's 镜像漏洞扫描).
"""
from __future__ import annotations

import json
import os
import re
import time
import uuid

# ---------------------------------------------------------------- inventories
def parse_dpkg_status(text: str) -> list[dict]:
    """Installed packages from /var/lib/dpkg/status (stanzas of `Field: value`)."""
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        fields, last = {}, None
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") and last:
                continue  # a continuation line (Description...)
            key, sep, value = line.partition(":")
            if sep:
                last = key.strip()
                fields[last] = value.strip()
        if fields.get("Package") and fields.get("Version") and "installed" in fields.get("Status", "installed").split():
            out.append({"ecosystem": "deb", "name": fields["Package"], "version": fields["Version"],
                        "arch": fields.get("Architecture", ""), "source": (fields.get("Source") or "").split(" ")[0]})
    return out


def parse_apk_installed(text: str) -> list[dict]:
    """Installed packages from /lib/apk/db/installed (P: name, V: version, A: arch)."""
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(line.split(":", 1) for line in stanza.splitlines() if len(line) > 2 and line[1] == ":")
        if fields.get("P") and fields.get("V"):
            out.append({"ecosystem": "apk", "name": fields["P"], "version": fields["V"], "arch": fields.get("A", "")})
    return out


def parse_dist_info(metadata: str) -> dict | None:
    """A Python package from its METADATA (or PKG-INFO): Name and Version headers."""
    fields = {}
    for line in metadata.splitlines():
        if not line.strip():
            break  # the body (the long description) follows the first empty line
        key, sep, value = line.partition(":")
        if sep and key in ("Name", "Version"):
            fields[key] = value.strip()
    if "Name" in fields and "Version" in fields:
        return {"ecosystem": "pypi", "name": fields["Name"], "version": fields["Version"]}
    return None


SKIP = {"proc", "sys", "dev"}


def read_packages(root: str) -> list[dict]:
    """Every package the image's filesystem at `root` records (symlinks never followed)."""
    def read(rel: str) -> str | None:
        path = os.path.join(root, rel)
        if os.path.islink(path) or not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    pkgs = []
    text = read("var/lib/dpkg/status")
    if text:
        pkgs += parse_dpkg_status(text)
    text = read("lib/apk/db/installed")
    if text:
        pkgs += parse_apk_installed(text)
    for dirpath, dirnames, _ in os.walk(root):
        if dirpath == root:
            dirnames[:] = [d for d in dirnames if d not in SKIP]
        for d in list(dirnames):
            if d.endswith(".dist-info") and os.path.basename(dirpath) in ("site-packages", "dist-packages"):
                meta = read(os.path.relpath(os.path.join(dirpath, d, "METADATA"), root))
                p = parse_dist_info(meta or "")
                if p:
                    p["location"] = "/" + os.path.relpath(os.path.join(dirpath, d), root)
                    pkgs.append(p)
                dirnames.remove(d)
    return sorted(pkgs, key=lambda p: (p["ecosystem"], p["name"].lower(), p["version"]))


# ---------------------------------------------------------------- version order
def _dpkg_order(c: str) -> int:
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    """dpkg's comparison of an upstream version or a revision."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _dpkg_order(a[i]) if i < len(a) else 0
            bc = _dpkg_order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i, j = i + 1, j + 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i, j = i + 1, j + 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def _split_deb(v: str) -> tuple[int, str, str]:
    epoch, _, rest = v.rpartition(":") if ":" in v else ("0", "", v)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return int(epoch or 0), upstream, revision


def compare_deb(a: str, b: str) -> int:
    """<0, 0, >0 as dpkg --compare-versions a lt/eq/gt b."""
    ea, ua, ra = _split_deb(a)
    eb, ub, rb = _split_deb(b)
    if ea != eb:
        return ea - eb
    return _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


_APK_SUFFIX = {"alpha": 0, "beta": 1, "pre": 2, "rc": 3, "": 4, "cvs": 5, "svn": 6, "git": 7, "hg": 8, "p": 9}


def _apk_key(v: str) -> tuple:
    v, _, rev = v.partition("-r")
    m = re.match(r"^([0-9]+(?:\.[0-9]+)*)([a-z]?)((?:_[a-z]+[0-9]*)*)$", v)
    if not m:
        return ((), "", (), int(rev or 0), v)
    nums = tuple(int(x) for x in m.group(1).split("."))
    suffixes = tuple((_APK_SUFFIX.get(s.rstrip("0123456789"), 4), int(re.sub(r"\D", "", s) or 0))
                     for s in m.group(3).split("_")[1:]) or ((4, 0),)
    return (nums, m.group(2), suffixes, int(rev or 0) if rev.isdigit() else 0, "")


def compare_apk(a: str, b: str) -> int:
    ka, kb = _apk_key(a), _apk_key(b)
    return (ka > kb) - (ka < kb)


def compare_pypi(a: str, b: str) -> int:
    try:
        from packaging.version import Version
        va, vb = Version(a), Version(b)
    except Exception:  # noqa: BLE001 -- no `packaging`, or not a PEP 440 version: compare the numbers
        va, vb = ([int(x) for x in re.findall(r"\d+", s)] for s in (a, b))
    return (va > vb) - (va < vb)


COMPARE = {"deb": compare_deb, "apk": compare_apk, "pypi": compare_pypi}


# ---------------------------------------------------------------- advisories (OSV)
def ecosystem_of(osv_ecosystem: str) -> str | None:
    """OSV's ecosystem names ("Debian:12", "Alpine:v3.19", "PyPI") -> ours."""
    head = osv_ecosystem.split(":")[0].lower()
    return {"debian": "deb", "ubuntu": "deb", "alpine": "apk", "pypi": "pypi"}.get(head)


def _norm(ecosystem: str, name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower() if ecosystem == "pypi" else name


def affected(pkg: dict, entry: dict) -> tuple[bool, str]:
    """Whether `pkg` is in the OSV `affected` entry; and the fixed version if one is known."""
    cmp = COMPARE[pkg["ecosystem"]]
    v = pkg["version"]
    if v in (entry.get("versions") or []):
        return True, ""
    for rng in entry.get("ranges") or []:
        if rng.get("type") not in ("ECOSYSTEM", None):
            continue  # GIT and SEMVER ranges speak of commits or other orders
        lo, inside, fixed = None, False, ""
        for ev in rng.get("events") or []:
            if "introduced" in ev:
                lo = ev["introduced"]
                inside = lo == "0" or cmp(v, lo) >= 0
            elif "fixed" in ev and lo is not None:
                if inside and cmp(v, ev["fixed"]) < 0:
                    return True, ev["fixed"]
                fixed, inside, lo = ev["fixed"], False, None
            elif "last_affected" in ev and lo is not None:
                if inside and cmp(v, ev["last_affected"]) <= 0:
                    return True, ""
                inside, lo = False, None
        if inside:
            return True, fixed
    return False, ""


def severity(adv: dict) -> str:
    sev = (adv.get("database_specific") or {}).get("severity")
    if sev:
        return str(sev).upper()
    for s in adv.get("severity") or []:
        return f"{s.get('type', '')} {s.get('score', '')}".strip()
    return "UNKNOWN"


def load_advisories(texts: list[str]) -> list[dict]:
    """OSV JSON: one advisory, a list of them, or {"vulns": [...]} (osv.dev's query answer)."""
    out = []
    for text in texts:
        data = json.loads(text)
        if isinstance(data, dict) and "vulns" in data:
            data = data["vulns"]
        out += data if isinstance(data, list) else [data]
    for adv in out:
        if not isinstance(adv, dict) or "id" not in adv:
            raise ValueError("an OSV advisory needs an \"id\" (see https://ossf.github.io/osv-schema/)")
    return out


def match(packages: list[dict], advisories: list[dict]) -> list[dict]:
    """Findings: one per (package, advisory) that affects it, sorted by package then id."""
    found = []
    for adv in advisories:
        for entry in adv.get("affected") or []:
            pkg_ref = entry.get("package") or {}
            eco = ecosystem_of(pkg_ref.get("ecosystem", ""))
            for p in packages:
                names = {p["name"], p.get("source") or p["name"]}
                if eco != p["ecosystem"] or _norm(eco, pkg_ref.get("name", "")) not in {_norm(eco, n) for n in names}:
                    continue
                hit, fixed = affected(p, entry)
                if hit:
                    found.append({"id": adv["id"], "package": p["name"], "ecosystem": p["ecosystem"],
                                  "installed": p["version"], "fixed": fixed, "severity": severity(adv),
                                  "summary": adv.get("summary", "")})
    return sorted(found, key=lambda f: (f["package"].lower(), f["id"]))


# ---------------------------------------------------------------- the SBOM
PURL_TYPE = {"deb": "deb/debian", "apk": "apk/alpine", "pypi": "pypi"}


def purl(p: dict) -> str:
    name = _norm(p["ecosystem"], p["name"])
    arch = f"?arch={p['arch']}" if p.get("arch") else ""
    return f"pkg:{PURL_TYPE[p['ecosystem']]}/{name}@{p['version']}{arch}"


def cyclonedx(image: str, image_id: str, packages: list[dict], findings: list[dict] = ()) -> dict:
    """A CycloneDX 1.5 SBOM of the image (with the vulnerabilities found, if any)."""
    bom = {"bomFormat": "CycloneDX", "specVersion": "1.5", "serialNumber": f"urn:uuid:{uuid.uuid4()}",
           "version": 1,
           "metadata": {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "tools": [{"vendor": "minidocker", "name": "minidocker scan"}],
                        "component": {"type": "container", "name": image, "version": image_id}},
           "components": [{"type": "library", "bom-ref": purl(p), "name": p["name"], "version": p["version"],
                           "purl": purl(p)} for p in packages]}
    refs = {(p["ecosystem"], p["name"]): purl(p) for p in packages}
    if findings:
        levels = {"critical", "high", "medium", "low", "info", "none"}
        bom["vulnerabilities"] = [{"id": f["id"],
                                   "ratings": [{"severity": f["severity"].lower() if f["severity"].lower() in levels
                                                else "unknown"}],
                                   "description": f["summary"],
                                   "affects": [{"ref": refs[(f["ecosystem"], f["package"])]}]} for f in findings]
    return bom
