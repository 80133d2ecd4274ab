"""Shared by the conformance corpus generators (generate_mhm_corpus.py, generate_eattest_corpus.py,
generate_mediprima_corpus.py): identifiers with their check digits (DOMAIN.md §2), the corpus
layout, the drift check and the command line.

Layout written (the folder is wiped and rewritten, output is deterministic):
  valid/<name>.xml, invalid/<code>/<name>.xml, multi/<name>.xml + <name>.expected (the exact
  error codes, one a line, sorted), sensitive_values.txt (values no validation message may hold).

Python 3 standard library only.
"""

import argparse
import filecmp
import os
import shutil
import sys
import tempfile


# --- identifiers (DOMAIN.md §2) ---------------------------------------------------------------

def niss(yy, mm, dd, seq, born_2000=False):
    """11-digit NISS/BIS (mm may carry the BIS +20/+40) with its check digits."""
    body = "%02d%02d%02d%03d" % (yy, mm, dd, seq)
    n = int(body) + (2_000_000_000 if born_2000 else 0)
    return body + "%02d" % (97 - n % 97)


def bad_niss(valid):
    """Same 9 digits with check digits that match neither the pre-2000 nor the 2000 branch."""
    body = valid[:9]
    good = {97 - int(body) % 97, 97 - (2_000_000_000 + int(body)) % 97}
    for delta in range(1, 100):
        cc = (int(valid[9:]) + delta) % 100
        if cc not in good:
            return body + "%02d" % cc
    raise AssertionError("unreachable")


def nihii(base6, qualification, mod=97):
    """11-digit NIHII: 6-digit base (str or int), check digits mod - base % mod, qualification."""
    base = int(base6)
    return "%06d%02d%s" % (base, mod - base % mod, qualification)


def bad_nihii(valid):
    """Check digits that fail both the 97 and the accepted 89 variant."""
    base6 = valid[:6]
    good = {97 - int(base6) % 97, 89 - int(base6) % 89}
    for delta in range(1, 100):
        cc = (int(valid[6:8]) + delta) % 100
        if cc not in good:
            return "%s%02d%s" % (base6, cc, valid[8:])
    raise AssertionError("unreachable")


# --- writing and checking ---------------------------------------------------------------------

def write_corpus(out, valid, invalid, multi, sensitive_header, sensitive):
    """Wipes `out` and writes the corpus: `valid` {name: bytes}, `invalid` {(code, name): bytes},
    `multi` {name: (bytes, codes)}, and sensitive_values.txt (`sensitive_header`, then the sorted
    `sensitive` values). Returns {relative path: bytes}."""
    if os.path.exists(out):
        shutil.rmtree(out)
    files = {}
    for name, data in valid.items():
        files[os.path.join("valid", name + ".xml")] = data
    for (code, name), data in invalid.items():
        files[os.path.join("invalid", code, name + ".xml")] = data
    for name, (data, codes) in multi.items():
        files[os.path.join("multi", name + ".xml")] = data
        files[os.path.join("multi", name + ".expected")] = (
            "\n".join(sorted(codes)) + "\n").encode()
    files["sensitive_values.txt"] = (sensitive_header + "\n".join(sorted(sensitive)) +
                                     "\n").encode("utf-8")
    for rel, data in sorted(files.items()):
        path = os.path.join(out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return files


def _listing(root):
    out = set()
    for folder, _, names in os.walk(root):
        for n in names:
            out.add(os.path.relpath(os.path.join(folder, n), root))
    return out


def check_corpus(write, committed, script):
    """Regenerates with write(folder) into a temporary folder and compares it, file by file and
    byte for byte, with `committed`. Prints every difference to stderr; returns 1 on any, else
    0."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = os.path.join(tmp, "corpus")
        write(fresh)
        diffs = []
        if not os.path.isdir(committed):
            diffs.append("committed corpus missing: " + committed)
        else:
            a, b = _listing(fresh), _listing(committed)
            diffs += ["only in regenerated corpus: " + r for r in sorted(a - b)]
            diffs += ["only in committed corpus: " + r for r in sorted(b - a)]
            for rel in sorted(a & b):
                if not filecmp.cmp(os.path.join(fresh, rel), os.path.join(committed, rel),
                                   shallow=False):
                    diffs.append("differs: " + rel)
        for d in diffs:
            print(d, file=sys.stderr)
        if diffs:
            print("corpus out of date: run conformance/%s" % script, file=sys.stderr)
            return 1
        return 0


def main(doc, folder, write, script):
    """The generators' command line: [--out DIR] rewrites DIR (default: `folder` next to the
    scripts), --check compares a fresh generation with it."""
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, folder))
    ap.add_argument("--check", action="store_true",
                    help="regenerate into a temporary folder and diff against --out")
    args = ap.parse_args()
    if args.check:
        return check_corpus(write, args.out, script)
    files = write(args.out)
    print("wrote %d files to %s" % (len(files), args.out))
    return 0
