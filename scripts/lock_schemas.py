"""Record the SHA-256 of every schema file in schemas/released.lock.

Run after adding a new schema version: ``python scripts/lock_schemas.py``.  Existing entries are
never changed (a changed released file is an error; make a new version instead).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "schemas"
LOCK = ROOT / "released.lock"


def main() -> int:
    """Add unlocked schema files to the lock; fail if a locked file changed."""
    locked: dict[str, str] = {}
    if LOCK.exists():
        for line in LOCK.read_text().splitlines():
            if line and not line.startswith("#"):
                digest, name = line.split(maxsplit=1)
                locked[name] = digest
    status = 0
    for path in sorted(ROOT.rglob("*-*.*.*.yaml")):
        rel = path.relative_to(ROOT).as_posix()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if rel in locked and locked[rel] != digest:
            print(f"{rel}: released file changed; make a new version instead", file=sys.stderr)
            status = 1
        locked.setdefault(rel, digest)
    lines = ["# sha256 of every released schema file; a released file never changes."]
    lines += [f"{digest}  {name}" for name, digest in sorted(locked.items())]
    LOCK.write_text("\n".join(lines) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
