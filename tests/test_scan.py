"""`minidocker scan`: an image's packages read from the package managers' records (dpkg, apk,
Python dist-info), a CycloneDX SBOM, and a match against OSV advisories with each ecosystem's
version order. Pure parts without root; then a real image built with records of all three."""
from __future__ import annotations

import json

import pytest

from minidocker.images import scan

DPKG = """Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u3
Description: GNU C Library
 a continuation line: Version: 0

Package: removed-thing
Status: deinstall ok config-files
Version: 1.0-1

Package: openssl
Status: install ok installed
Architecture: amd64
Version: 3.0.11-1~deb12u2
"""
APK = "P:musl\nV:1.2.4-r2\nA:x86_64\n\nP:busybox\nV:1.36.1-r15\nA:x86_64\n"
META = "Metadata-Version: 2.1\nName: Jinja2\nVersion: 3.1.2\n\nName: not-this\n"


@pytest.mark.parametrize("a, b, sign", [
    ("1.0", "1.0", 0), ("1.0~rc1", "1.0", -1), ("1.0", "1.0-1", -1), ("1.0-1", "1.0-2", -1),
    ("1:0.1", "2.0", 1), ("2.36-9+deb12u3", "2.36-9", 1), ("2.36-9+deb12u3", "2.36-9+deb12u4", -1),
    ("3.0.11-1~deb12u2", "3.0.11-1", -1), ("1.10", "1.9", 1), ("1.0a", "1.0", 1), ("1.0+b1", "1.0", 1),
])
def test_dpkg_version_order(a, b, sign):
    r = scan.compare_deb(a, b)
    assert (r > 0) - (r < 0) == sign


@pytest.mark.parametrize("a, b, sign", [
    ("1.2.4-r2", "1.2.4-r10", -1), ("1.2_rc1", "1.2", -1), ("1.2", "1.2_p1", -1), ("1.36.1-r15", "1.36.1", 1),
    ("1.10", "1.9", 1), ("1.2a", "1.2", 1), ("3.1.2", "3.1.2", 0),
])
def test_apk_version_order(a, b, sign):
    assert scan.compare_apk(a, b) == sign


def test_pypi_version_order():
    assert scan.compare_pypi("3.1.2", "3.1.10") == -1 and scan.compare_pypi("2.0rc1", "2.0") == -1


def test_records_are_read():
    deb = scan.parse_dpkg_status(DPKG)
    assert [(p["name"], p["version"], p["source"]) for p in deb] == [
        ("libc6", "2.36-9+deb12u3", "glibc"), ("openssl", "3.0.11-1~deb12u2", "")]
    assert [(p["name"], p["version"]) for p in scan.parse_apk_installed(APK)] == [
        ("musl", "1.2.4-r2"), ("busybox", "1.36.1-r15")]
    assert scan.parse_dist_info(META) == {"ecosystem": "pypi", "name": "Jinja2", "version": "3.1.2"}


ADVISORIES = [
    {"id": "DSA-TEST-1", "summary": "glibc: a buffer overflow", "database_specific": {"severity": "high"},
     "affected": [{"package": {"ecosystem": "Debian:12", "name": "glibc"},
                   "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.36-9+deb12u4"}]}]}]},
    {"id": "DSA-TEST-2", "summary": "openssl: already fixed here",
     "affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"},
                   "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u1"}]}]}]},
    {"id": "GHSA-test-jinja", "summary": "jinja2: sandbox escape", "severity": [{"type": "CVSS_V3", "score": "7.5"}],
     "affected": [{"package": {"ecosystem": "PyPI", "name": "jinja2"},
                   "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "3.0"}, {"fixed": "3.1.3"}]}]}]},
    {"id": "ALPINE-TEST", "summary": "musl: listed versions", "database_specific": {"severity": "medium"},
     "affected": [{"package": {"ecosystem": "Alpine:v3.19", "name": "musl"}, "versions": ["1.2.4-r2"]}]},
    {"id": "ALPINE-TEST-2", "summary": "busybox: last affected",
     "affected": [{"package": {"ecosystem": "Alpine:v3.19", "name": "busybox"},
                   "ranges": [{"type": "ECOSYSTEM",
                               "events": [{"introduced": "1.30"}, {"last_affected": "1.36.1-r14"}]}]}]},
]


def test_advisories_match_by_ecosystem_name_and_range():
    pkgs = scan.parse_dpkg_status(DPKG) + scan.parse_apk_installed(APK) + [scan.parse_dist_info(META)]
    found = scan.match(pkgs, ADVISORIES)
    assert [(f["package"], f["id"], f["fixed"], f["severity"]) for f in found] == [
        ("Jinja2", "GHSA-test-jinja", "3.1.3", "CVSS_V3 7.5"),
        ("libc6", "DSA-TEST-1", "2.36-9+deb12u4", "HIGH"),   # found through its source package
        ("musl", "ALPINE-TEST", "", "MEDIUM")]
    bom = scan.cyclonedx("app:1", "sha256:abc", pkgs, found)
    assert bom["bomFormat"] == "CycloneDX" and len(bom["components"]) == 5
    assert "pkg:deb/debian/libc6@2.36-9+deb12u3?arch=amd64" in {c["purl"] for c in bom["components"]}
    assert "pkg:pypi/jinja2@3.1.2" in {c["purl"] for c in bom["components"]}
    assert {v["ratings"][0]["severity"] for v in bom["vulnerabilities"]} == {"unknown", "high", "medium"}
    with pytest.raises(ValueError, match="needs an"):
        scan.load_advisories(['[{"summary": "no id"}]'])
    assert len(scan.load_advisories([json.dumps({"vulns": ADVISORIES}), json.dumps(ADVISORIES[0])])) == 6


@pytest.mark.root
def test_scan_a_real_image(md, tmp_path):
    ctx = tmp_path / "ctx"
    (ctx / "var/lib/dpkg").mkdir(parents=True)
    (ctx / "var/lib/dpkg/status").write_text(DPKG)
    (ctx / "lib/apk/db").mkdir(parents=True)
    (ctx / "lib/apk/db/installed").write_text(APK)
    di = ctx / "usr/lib/python3.11/site-packages/Jinja2-3.1.2.dist-info"
    di.mkdir(parents=True)
    (di / "METADATA").write_text(META)
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY var /var\nCOPY lib /lib\nCOPY usr /usr\n")
    md.ok("build", "-q", "-t", "scan-me:1", str(ctx))
    adv = tmp_path / "osv.json"
    adv.write_text(json.dumps({"vulns": ADVISORIES}))
    sbom = tmp_path / "sbom.json"
    r = md("scan", "--advisories", str(adv), "--sbom", str(sbom), "--exit-code", "3", "scan-me:1")
    assert r.returncode == 3, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].endswith(": 5 packages (2 apk, 2 deb, 1 pypi), 5 advisories, 3 vulnerabilities")
    assert lines[1].split() == ["PACKAGE", "VULNERABILITY", "SEVERITY", "INSTALLED", "FIXED", "IN", "SUMMARY"]
    assert [line.split()[:2] for line in lines[2:]] == [["Jinja2", "GHSA-test-jinja"], ["libc6", "DSA-TEST-1"],
                                                        ["musl", "ALPINE-TEST"]]
    bom = json.loads(sbom.read_text())
    assert {c["name"] for c in bom["components"]} == {"libc6", "openssl", "musl", "busybox", "Jinja2"}
    data = json.loads(md.ok("scan", "--format", "json", "--advisories", str(adv), "scan-me:1"))
    assert len(data["vulnerabilities"]) == 3 and data["packages"][0]["ecosystem"] == "apk"
    assert md("scan", "busybox").stdout.endswith("0 advisories, 0 vulnerabilities\n")
    bad = md("scan", "--advisories", str(tmp_path / "none.json"), "busybox")
    assert bad.returncode == 125 and len(bad.stderr.strip().splitlines()) == 1
    md.ok("rmi", "scan-me:1")
