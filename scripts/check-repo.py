#!/usr/bin/env python3
"""Checks that the repository stands alone and its published crates are ready to package.

Run by CI (.ci/run), with `--self-test` first so the checks are shown able to fail.

1. No file refers to a path above the repository root: every relative path with `..` in a
   file that git tracks (or would track: new files not ignored) is resolved from the file's
   directory and from the root, and one that leaves the repository both ways is reported.
   Any mention of the machine's shared folder next to the repository is reported too.
2. What a published crate compiles in (`include_str!`, `include_bytes!`, `include!`,
   `#[path]`) stays inside that crate's directory, the only part `cargo package` ships.
3. The published crates (every workspace member not marked `publish = false`) carry the
   metadata crates.io shows (description, license, rust-version, readme inside the crate,
   keywords, categories, documentation), their licence files, and no placeholder URL.
4. No dependency of a published crate (normal and build, as resolved in Cargo.lock) declares
   a rust-version above the workspace's.

Usage: scripts/check-repo.py [--self-test] [--root DIR] [--no-cargo]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

# Built in pieces so that this file does not match its own rule.
SHARED_MENTIONS = (".." + "/shared", "/work" + "/shared")
# Dependencies that need a newer Rust than they declare (no `rust-version` in their manifest):
# found when a build on the declared toolchain failed, or in their changelog.
KNOWN_RUST_VERSIONS = {
    # rustyline 19 uses `cfg_select!` (Rust 1.95); 17 and 18 stall on typed-ahead input while
    # its external printer is in use, which `tolqin connect` relies on.
    "rustyline": "1.95",
}

PLACEHOLDER_HOSTS = ("example.invalid", "example.com/tolqin", "github.com/OWNER", "TODO")
LICENCE_FILES = ("LICENSE-MIT", "LICENSE-APACHE")
MAX_KEYWORDS = 5
TEXT_LIMIT = 2 * 1024 * 1024  # larger files are data, not references

# A run of path characters; it is a relative path with `..` when one of its `/`-separated
# components is exactly `..` (so `...`, `0..10`, `..=` and Rust's `..` rest pattern are not).
PATH_RUN = re.compile(r"[A-Za-z0-9_.\-/]+")
INCLUDE = re.compile(
    r"""(?:include_str!|include_bytes!|include!)\s*\(\s*"([^"]+)"|#\[path\s*=\s*"([^"]+)"\]"""
)


def escapes(base, parts):
    """Whether walking `parts` from the directory `base` (a list of names) leaves it."""
    stack = list(base)
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not stack:
                return True
            stack.pop()
        else:
            stack.append(part)
    return False


def above_root_refs(rel_path, text):
    """(line, path) of each relative path in `text` that leaves the repository both from the
    file's directory and from the root, and of each mention of the shared folder."""
    found = []
    file_dir = [p for p in os.path.dirname(rel_path).split("/") if p]
    for number, line in enumerate(text.splitlines(), 1):
        for match in PATH_RUN.finditer(line):
            token = match.group(0)
            parts = token.split("/")
            if ".." not in parts:
                continue
            before = line[: match.start()]
            if "/" not in token and not re.search(r"\bcd\s+$", before):
                continue  # a bare `..`: a range or a rest pattern, unless after `cd`
            if token.startswith("/") and not before.endswith((")", "}", '"', "'")):
                continue  # absolute, not `$(dirname "$0")/..` or `"$dir"/..`
            if escapes(file_dir, parts) and escapes([], parts):
                found.append((number, token))
        for mention in SHARED_MENTIONS:
            if mention in line:
                found.append((number, mention))
    return found


def crate_escapes(rel_path, text, crate_dir):
    """(line, path) of each file compiled in from outside `crate_dir` (a list of names)."""
    found = []
    # The file's directory below the crate's: resolving from there, the crate is the top.
    dir_in_crate = [p for p in os.path.dirname(rel_path).split("/") if p][len(crate_dir):]
    for number, line in enumerate(text.splitlines(), 1):
        for match in INCLUDE.finditer(line):
            path = match.group(1) or match.group(2)
            if escapes(dir_in_crate, path.split("/")):
                found.append((number, path))
    return found


def repo_files(root):
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root, check=True, capture_output=True,
    ).stdout
    return sorted({f for f in out.decode().split("\0") if f})


def read_text(root, rel_path):
    full = os.path.join(root, rel_path)
    if os.path.islink(full) or not os.path.isfile(full):
        return None  # a symlink is checked where it points, a deleted file not at all
    if os.path.getsize(full) > TEXT_LIMIT:
        return None
    with open(full, "rb") as f:
        data = f.read()
    if b"\0" in data:
        return None
    return data.decode("utf-8", errors="replace")


def check_files(root, published_dirs):
    """Checks 1 and 2 on every file of the repository; returns the problems found."""
    problems = []
    for rel_path in repo_files(root):
        full = os.path.join(root, rel_path)
        if os.path.islink(full):
            target = os.readlink(full)
            parts = target.split("/")
            file_dir = [p for p in os.path.dirname(rel_path).split("/") if p]
            if os.path.isabs(target) or escapes(file_dir, parts):
                problems.append(f"{rel_path}: a symlink to {target!r}, outside the repository")
            continue
        text = read_text(root, rel_path)
        if text is None:
            continue
        for number, token in above_root_refs(rel_path, text):
            problems.append(f"{rel_path}:{number}: refers to {token!r}, outside the repository")
        if rel_path.endswith(".rs"):
            for crate_dir in published_dirs:
                prefix = "/".join(crate_dir) + "/"
                if rel_path.startswith(prefix):
                    for number, path in crate_escapes(rel_path, text, crate_dir):
                        problems.append(
                            f"{rel_path}:{number}: compiles in {path!r}, outside its crate "
                            f"({prefix}): `cargo package` would not ship it"
                        )
    return problems


def version_tuple(text):
    """`1.88` -> (1, 88, 0), for comparing rust-versions."""
    numbers = [int(x) for x in text.split(".")[:3]]
    return tuple(numbers + [0] * (3 - len(numbers)))


def check_metadata(root, metadata):
    """Checks 3 and 4 on `cargo metadata` output; returns (problems, published crate dirs)."""
    problems = []
    members = set(metadata["workspace_members"])
    packages = {p["id"]: p for p in metadata["packages"]}
    published = [packages[m] for m in members if packages[m].get("publish") != []]
    published.sort(key=lambda p: p["name"])
    dirs = []
    for package in published:
        name = package["name"]
        crate_dir = os.path.dirname(package["manifest_path"])
        rel_dir = os.path.relpath(crate_dir, root)
        dirs.append([p for p in rel_dir.split("/") if p and p != "."])
        for field in ("description", "license", "rust_version", "documentation", "readme"):
            if not package.get(field):
                problems.append(f"{name}: no `{field.replace('_', '-')}` in {rel_dir}/Cargo.toml")
        if not package.get("keywords"):
            problems.append(f"{name}: no `keywords`")
        if len(package.get("keywords") or []) > MAX_KEYWORDS:
            problems.append(f"{name}: more than {MAX_KEYWORDS} keywords (crates.io's limit)")
        if not package.get("categories"):
            problems.append(f"{name}: no `categories`")
        readme = package.get("readme")
        if readme:
            readme_path = os.path.normpath(os.path.join(crate_dir, readme))
            if not readme_path.startswith(crate_dir + os.sep) or not os.path.isfile(readme_path):
                problems.append(f"{name}: readme {readme!r} is not a file inside {rel_dir}")
        for licence in LICENCE_FILES:
            if not os.path.isfile(os.path.join(crate_dir, licence)):
                problems.append(f"{name}: no {licence} in {rel_dir} (the package ships only the crate)")
        for field in ("repository", "homepage", "documentation"):
            value = package.get(field) or ""
            if any(host in value for host in PLACEHOLDER_HOSTS):
                problems.append(f"{name}: placeholder URL in `{field}`: {value}")
        if not package.get("rust_version"):
            problems.append(f"{name}: no rust-version")

    # 4: the dependencies users build, as Cargo.lock resolves them, against each published
    # crate's own rust-version (the libraries promise an older Rust than the binary, whose
    # line editor needs a newer one).
    if metadata.get("resolve"):
        nodes = {n["id"]: n for n in metadata["resolve"]["nodes"]}
        for crate in published:
            msrv = crate.get("rust_version")
            if not msrv:
                continue
            seen = set()
            todo = [crate["id"]]
            while todo:
                package_id = todo.pop()
                if package_id in seen or package_id not in nodes:
                    continue
                seen.add(package_id)
                for dep in nodes[package_id].get("deps", []):
                    kinds = {k.get("kind") for k in dep.get("dep_kinds", [])}
                    if kinds & {None, "build"}:
                        todo.append(dep["pkg"])
            for package_id in sorted(seen):
                package = packages[package_id]
                needs = package.get("rust_version") or KNOWN_RUST_VERSIONS.get(package["name"])
                if needs and version_tuple(needs) > version_tuple(msrv):
                    problems.append(
                        f"{crate['name']} (rust-version {msrv}) depends on {package['name']} "
                        f"{package['version']}, which needs Rust {needs}: pin an older version "
                        f"(`cargo update {package['name']} --precise VERSION`) or raise "
                        f"{crate['name']}'s rust-version"
                    )
    return problems, dirs


def check_clippy_msrv(root):
    """clippy's `incompatible_msrv` lint reads rust-version; nothing may switch it off."""
    problems = []
    for name in ("clippy.toml", ".clippy.toml"):
        path = os.path.join(root, name)
        if os.path.isfile(path):
            with open(path) as f:
                if re.search(r"^\s*msrv\s*=", f.read(), re.M):
                    problems.append(f"{name}: sets `msrv`, which overrides rust-version for clippy")
    for rel_path in repo_files(root):
        if rel_path.endswith(".rs") or rel_path.endswith(".toml"):
            text = read_text(root, rel_path)
            if text and re.search(r"incompatible_msrv\s*(\]|\)|=\s*\"allow)", text):
                for number, line in enumerate(text.splitlines(), 1):
                    if "incompatible_msrv" in line and "allow" in line:
                        problems.append(f"{rel_path}:{number}: allows clippy::incompatible_msrv")
    return problems


def cargo_metadata(root):
    done = subprocess.run(
        ["cargo", "metadata", "--format-version", "1"], cwd=root, capture_output=True
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr.decode(errors="replace"))
        raise SystemExit("check-repo: `cargo metadata` failed (above)")
    return json.loads(done.stdout)


def run(root, use_cargo):
    problems = []
    published_dirs = []
    if use_cargo:
        meta_problems, published_dirs = check_metadata(root, cargo_metadata(root))
        problems += meta_problems
    problems += check_files(root, published_dirs)
    problems += check_clippy_msrv(root)
    return problems


def self_test():
    """The checks on a made-up repository: each bad case is caught, no good one is."""
    failures = []

    def expect(what, got, want):
        if got != want:
            failures.append(f"{what}: got {got!r}, want {want!r}")

    with tempfile.TemporaryDirectory() as tmp:
        files = {
            # Bad: above the root from the file's directory and from the root.
            "crates/a/src/bad.rs": 'const V: &str = include_str!("' + "../" * 4 + 'vectors/x.json");\n',
            "scripts/bad.sh": "source " + "../" * 2 + "other/env.sh\n",
            "docs/bad.md": "See " + SHARED_MENTIONS[0] + "/vectors.\n",
            "docs/bad2.md": "Copied from " + SHARED_MENTIONS[1] + "/STYLE.md.\n",
            # Bad for packaging only: inside the repository, outside the crate.
            "crates/a/src/lib.rs": '#[doc = include_str!("' + "../" * 3 + 'README.md")]\npub struct D;\n',
            # Good.
            "crates/a/src/good.rs": (
                'const V: &str = include_str!("../tests/vectors/x.json");\n'
                "let r = 0..10; let s = &v[..]; let t = ..=3; // ... and so on\n"
            ),
            "scripts/good.sh": 'cd "$(dirname "$0")/.."\nls ../crates /usr/lib/../bin\n',
            "fuzz/Cargo.toml": '[dependencies]\na = { path = "../crates/a" }\n',
            "README.md": "# x\n",
        }
        for rel_path, text in files.items():
            path = os.path.join(tmp, rel_path)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        # A licence linked from the root is fine; a link out of the repository is not.
        os.symlink("../" * 2 + "README.md", os.path.join(tmp, "crates/a/LICENSE-MIT"))
        os.symlink("../" * 3 + "elsewhere/L", os.path.join(tmp, "crates/a/LICENSE-APACHE"))
        subprocess.run(["git", "init", "-q", tmp], check=True)
        subprocess.run(["git", "add", "-A"], cwd=tmp, check=True)
        problems = check_files(tmp, [["crates", "a"]])
        flagged = sorted({p.split(":", 1)[0] for p in problems})
        expect(
            "files flagged",
            flagged,
            ["crates/a/LICENSE-APACHE", "crates/a/src/bad.rs", "crates/a/src/lib.rs",
             "docs/bad.md", "docs/bad2.md", "scripts/bad.sh"],
        )
        expect(
            "lib.rs flagged for packaging only",
            [p for p in problems if p.startswith("crates/a/src/lib.rs") and "outside the repository" in p],
            [],
        )

    # Metadata: a published crate missing fields, with a dependency needing a newer Rust.
    def package(name, deps_msrv=None, **fields):
        return dict(
            id=name, name=name, version="1.0.0", publish=None,
            manifest_path=f"/r/crates/{name}/Cargo.toml", rust_version=deps_msrv,
            description=None, license=None, documentation=None, readme=None,
            keywords=[], categories=[], repository=None, homepage=None, **fields,
        )

    meta = {
        "workspace_members": ["a"],
        "packages": [
            dict(package("a", "1.88"), repository="https://example.invalid/a"),
            package("dep_ok", "1.70"),
            package("dep_new", "1.91"),
            package("dev_new", "1.95"),
        ],
        "resolve": {"nodes": [
            {"id": "a", "deps": [
                {"pkg": "dep_ok", "dep_kinds": [{"kind": None}]},
                {"pkg": "dep_new", "dep_kinds": [{"kind": "build"}]},
                {"pkg": "dev_new", "dep_kinds": [{"kind": "dev"}]},
            ]},
            {"id": "dep_ok", "deps": []}, {"id": "dep_new", "deps": []}, {"id": "dev_new", "deps": []},
        ]},
    }
    problems, dirs = check_metadata("/r", meta)
    text = "\n".join(problems)
    for needle in ("no `description`", "no `readme`", "no `keywords`", "no `categories`",
                   "no `documentation`", "no LICENSE-MIT", "placeholder URL", "dep_new 1.0.0, which needs Rust 1.91"):
        if needle not in text:
            failures.append(f"metadata check missed {needle!r}")
    for needle in ("dep_ok", "dev_new"):
        if needle in text:
            failures.append(f"metadata check flagged {needle}, which it should not")
    expect("published dirs", dirs, [["crates", "a"]])
    expect("version order", version_tuple("1.88") < version_tuple("1.88.1") < version_tuple("1.90"), True)

    if failures:
        for failure in failures:
            print(f"self-test: {failure}", file=sys.stderr)
        return 1
    print("check-repo self-test: every planted problem caught, no good file flagged")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--self-test", action="store_true", help="check the checks")
    parser.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    parser.add_argument("--no-cargo", action="store_true", help="skip the cargo metadata checks")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    root = os.path.realpath(args.root)
    problems = run(root, not args.no_cargo)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"check-repo: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("check-repo: no path outside the repository, published crates ready to package")
    return 0


if __name__ == "__main__":
    sys.exit(main())
