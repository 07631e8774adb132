#!/usr/bin/env python3
"""Prints "<file> <key>" for each C++ source given, where the key is a sha256 of everything
clang-tidy's findings for that file depend on: clang-tidy's version, the .clang-tidy file,
the file's compile command and its preprocessed text (so any header it includes counts). The
source root is replaced by a placeholder first, so that a new clone of the same tree (what CI
checks out) has the same keys. A file with no compile command gets no key (it is tidied).

Usage: tidy_keys.py BUILD_DIR FILE...   (files relative to the source root, the current directory)
"""
import concurrent.futures
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys


def preprocessor(command):
    # clang's preprocessor, as clang-tidy parses the file with clang; else the build's compiler.
    clang = shutil.which("clang++-14") or shutil.which("clang++")
    args = shlex.split(command)
    if clang:
        args[0] = clang
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("-o", "-MF", "-MT", "-MQ"):
            skip = True
            continue
        if a in ("-c", "-MD", "-MMD"):
            continue
        out.append(a)
    # -C: comments too (NOLINT and the checks that read comments).
    return out + ["-E", "-P", "-C", "-o", "-"]


def key(root, common, entry):
    args = preprocessor(entry["command"])
    done = subprocess.run(args, cwd=entry["directory"], capture_output=True)
    if done.returncode != 0:
        return None  # tidied, and clang-tidy says why
    h = hashlib.sha256(common)
    h.update(entry["command"].replace(root, "@ROOT@").encode())
    h.update(done.stdout.replace(root.encode(), b"@ROOT@"))
    return h.hexdigest()


def main():
    build, files = sys.argv[1], sys.argv[2:]
    root = os.getcwd()
    with open(os.path.join(build, "compile_commands.json")) as f:
        commands = {os.path.realpath(e["file"]): e for e in json.load(f)}
    tidy = shutil.which("clang-tidy-14") or shutil.which("clang-tidy") or "clang-tidy"
    version = subprocess.run([tidy, "--version"], capture_output=True).stdout
    with open(".clang-tidy", "rb") as f:
        common = version + f.read()
    todo = [(f, commands.get(os.path.realpath(f))) for f in files]
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        keys = pool.map(lambda t: key(root, common, t[1]) if t[1] else None, todo)
        for (f, _), k in zip(todo, keys):
            if k:
                print(f, k)


if __name__ == "__main__":
    main()
