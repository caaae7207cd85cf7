""".dockerignore matching (minidocker.compat.build.ignore): like moby/patternmatcher and the
docker CLI / BuildKit context walk. No root needed."""
from __future__ import annotations

import os

import pytest

from minidocker.compat.build.ignore import DockerIgnore, DockerIgnoreError, clean_path, read_patterns, walk
from minidocker.errors import MinidockerError


def ignore(*lines: str) -> DockerIgnore:
    return DockerIgnore.from_text("\n".join(lines) + "\n")


def make_tree(root, files: dict) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


# --------------------------------------------------------------------------
# Reading the file
# --------------------------------------------------------------------------

def test_read_patterns_normalizes_like_docker():
    text = ("\ufeff# a comment\n"
            "\n"
            "   *.log   \n"
            "  # indented: a pattern, not a comment\n"
            "/secret.txt\n"
            "./build//out/\n"
            "a/../b\n"
            "!  keep.log\n"
            "!/root-only\n")
    assert read_patterns(text) == ["*.log", "# indented: a pattern, not a comment", "secret.txt",
                                   "build/out", "b", "!keep.log", "!root-only"]


@pytest.mark.parametrize("path,cleaned", [
    ("", "."), (".", "."), ("a/b/", "a/b"), ("./a//b", "a/b"), ("a/./b/..", "a"),
    ("../a", "../a"), ("/../a", "/a"), ("/", "/"), ("a/..", "."), ("//a", "/a"),
])
def test_clean_path(path, cleaned):
    assert clean_path(path) == cleaned


def test_illegal_patterns():
    with pytest.raises(DockerIgnoreError, match='illegal exclusion pattern: "!"'):
        ignore("!")
    with pytest.raises(DockerIgnoreError, match="syntax error in pattern"):
        ignore("[abc")
    assert issubclass(DockerIgnoreError, MinidockerError)


# --------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------

def test_comments_and_blank_lines_match_nothing():
    d = ignore("# *.py", "", "   ")
    assert d.patterns == []
    assert not d.excluded("app.py")


def test_star_and_question_mark_stay_within_one_component():
    d = ignore("*.pyc", "temp?", "*/temp*")
    assert d.excluded("a.pyc")
    assert not d.excluded("pkg/a.pyc")        # * does not cross /
    assert d.excluded("temp1") and d.excluded("tempX")
    assert not d.excluded("temp") and not d.excluded("temp12")
    assert d.excluded("sub/temporary") and not d.excluded("a/b/temporary")


def test_double_star_matches_any_number_of_directories():
    d = ignore("**/*.pyc", "**/__pycache__", "docs/**/*.tmp")
    assert d.excluded("a.pyc") and d.excluded("pkg/a.pyc") and d.excluded("pkg/sub/deep/a.pyc")
    assert d.excluded("__pycache__") and d.excluded("pkg/__pycache__")
    assert d.excluded("pkg/__pycache__/mod.cpython-311.pyc")   # inside an excluded directory
    assert d.excluded("docs/x.tmp") and d.excluded("docs/a/b/x.tmp")
    assert not d.excluded("other/x.tmp")


def test_trailing_double_star_and_everything():
    d = ignore("build/**")
    assert d.excluded("build/a") and d.excluded("build/a/b")
    assert not d.excluded("build")             # the directory itself is not matched
    assert ignore("**").excluded("any/thing")


def test_character_classes_and_escapes():
    d = ignore("[a-c].txt", "[^x]y", "lit\\*")
    assert d.excluded("b.txt") and not d.excluded("d.txt")
    assert d.excluded("zy") and not d.excluded("xy")
    assert d.excluded("lit*") and not d.excluded("litX")


def test_directory_exclusion_excludes_its_contents():
    d = ignore("node_modules", ".git")
    assert d.excluded("node_modules", is_dir=True)
    assert d.excluded("node_modules/pkg/index.js")
    assert d.excluded(".git/HEAD")
    assert not d.excluded("src/node_modules_notes.txt")


def test_exception_reincludes_a_file_in_an_excluded_directory():
    d = ignore("dir", "!dir/keep.txt")
    assert d.excluded("dir/other.txt")
    assert not d.excluded("dir/keep.txt")
    assert d.excluded("dir", is_dir=True)      # the directory stays excluded itself


def test_exception_and_the_last_match_wins():
    assert not ignore("*.md", "!README.md").excluded("README.md")
    assert ignore("!README.md", "*.md").excluded("README.md")        # order matters
    assert ignore("*.md", "!README.md", "README*").excluded("README.md")
    d = ignore("*", "!src", "src/*.tmp")
    assert d.excluded("Makefile")
    assert not d.excluded("src") and not d.excluded("src/main.c")
    assert d.excluded("src/x.tmp")


def test_leading_slash_is_relative_to_the_context():
    d = ignore("/secret.txt", "/conf/*.key")
    assert d.excluded("secret.txt") and d.excluded("conf/a.key")
    assert not d.excluded("sub/secret.txt")


def test_paths_are_cleaned_before_matching():
    d = ignore("a/b")
    assert d.excluded("./a/b") and d.excluded("a//b/") and d.excluded("a/b/c")
    assert not d.excluded(".")


# --------------------------------------------------------------------------
# Walking a context directory
# --------------------------------------------------------------------------

def test_walk_lists_what_is_sent(tmp_path):
    make_tree(tmp_path, {
        "Dockerfile": "FROM scratch\n",
        ".dockerignore": "# build output\n**/*.pyc\ntemp?\nbuild\n!build/keep.txt\n/secret.txt\n",
        "app.py": "", "pkg/mod.py": "", "pkg/mod.pyc": "", "a.pyc": "",
        "temp1": "", "temp12": "",
        "build/out.bin": "", "build/keep.txt": "", "build/sub/x": "",
        "secret.txt": "", "pkg/secret.txt": "",
    })
    assert walk(str(tmp_path)) == [
        ".dockerignore", "Dockerfile", "app.py",
        "build", "build/keep.txt",           # build listed as the parent of a re-included file
        "pkg", "pkg/mod.py", "pkg/secret.txt",
        "temp12",
    ]


def test_walk_always_sends_the_dockerfile_and_dockerignore(tmp_path):
    make_tree(tmp_path, {"Dockerfile": "", ".dockerignore": "*\n", "a": "", "sub/b": ""})
    assert walk(str(tmp_path)) == [".dockerignore", "Dockerfile"]
    make_tree(tmp_path, {".dockerignore": "Dockerfile\n.dockerignore\n"})
    assert walk(str(tmp_path)) == [".dockerignore", "Dockerfile", "a", "sub", "sub/b"]


def test_walk_sends_a_dockerfile_in_a_subdirectory(tmp_path):
    make_tree(tmp_path, {"docker/app.Dockerfile": "", "docker/other": "", ".dockerignore": "docker\n"})
    assert walk(str(tmp_path), dockerfile="docker/app.Dockerfile") == \
        [".dockerignore", "docker", "docker/app.Dockerfile"]


def test_walk_without_dockerignore_sends_everything(tmp_path):
    make_tree(tmp_path, {"Dockerfile": "", "a/b/c": ""})
    assert walk(str(tmp_path)) == ["Dockerfile", "a", "a/b", "a/b/c"]
    assert DockerIgnore.from_dir(str(tmp_path)).patterns == []


def test_walk_does_not_follow_symlinks(tmp_path):
    outside = tmp_path / "outside"
    make_tree(outside, {"secret": "host file"})
    ctx = tmp_path / "ctx"
    make_tree(ctx, {"Dockerfile": ""})
    os.symlink(outside, ctx / "link-to-dir")
    os.symlink("/etc/passwd", ctx / "link-to-file")
    assert walk(str(ctx)) == ["Dockerfile", "link-to-dir", "link-to-file"]   # the links, not their targets


def test_walk_with_wildcard_exception_looks_inside_excluded_directories(tmp_path):
    make_tree(tmp_path, {"Dockerfile": "", ".dockerignore": "vendor\n!**/*.keep\n",
                         "vendor/a/x.keep": "", "vendor/a/y.txt": "", "vendor/b/z.txt": ""})
    assert walk(str(tmp_path)) == [".dockerignore", "Dockerfile", "vendor", "vendor/a", "vendor/a/x.keep"]


def test_excluded_directory_without_exceptions_is_not_entered(tmp_path):
    make_tree(tmp_path, {"Dockerfile": "", "big/a": "", ".dockerignore": "big\n!other/file\n"})
    d = DockerIgnore.from_dir(str(tmp_path))
    assert not d._may_reinclude_below("big")
    assert d._may_reinclude_below("other")
    assert walk(str(tmp_path)) == [".dockerignore", "Dockerfile"]


def test_matching_is_linear_for_any_pattern():
    """`*a*a*a...b` as a regex backtracks for ever on a long name (a hostile .dockerignore
    hung `build`); the pattern automaton answers at once."""
    import time
    ig = DockerIgnore(["*a" * 40 + "b", "**/x*y*z*w*v"])
    t = time.monotonic()
    assert not ig.excluded("a" * 5000)
    assert not ig.excluded("d/" + "x" * 3000)
    assert ig.excluded("a" * 50 + "b") and ig.excluded("p/q/xyzwv")
    assert time.monotonic() - t < 2
