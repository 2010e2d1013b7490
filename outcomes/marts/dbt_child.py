"""dbt's child process (outcomes/marts/dbt.py): `python outcomes/marts/dbt_child.py RESULTS ARGS...`
runs `dbt ARGS` through dbt's programmatic runner (dbtRunner) and writes to RESULTS the run results
the build reads (each node's id, status, time and message) and where the process's CPU went (dbt's
import; the command: loading the parsed project, then the nodes). dbt itself then need not write
its JSON artifacts (`--no-write-json`: manifest.json twice, semantic_manifest.json and
run_results.json, each a serialisation of the whole project) when nobody reads them.

The parsed project: with `OUTCOMES_DBT_MANIFEST` set (a file path prefix), the child keeps dbt's
parsed project (its Manifest object, pickled) in `<prefix>.<key>.pickle` and hands it to the
runner (`dbtRunner(manifest=...)`), which then parses nothing: loading it costs about a tenth of
dbt's partial parse (which reads its msgpack, hashes every project file and rebuilds the graph).
The key is a sha256 of everything the parse reads: dbt's and its adapters' versions, Python's,
every file of the project folder (profiles.yml included; not its target/ or logs/) and every
OUTCOMES_ or DBT_ environment variable but the run's own (the knowledge dates, read only when a
model runs, the run's folders and dbt's log settings). So a change to any of them parses anew, as dbt would; a file
the key does not name cannot be used. Without a kept manifest the child parses first (dbt's
partial parsing as before), keeps it, then runs the command on it.
Exit status as dbt's own: 0 success, 1 a node failed, 2 dbt could not run.
"""

from __future__ import annotations

import copyreg
import gc
import hashlib
import json
import os
import pickle
import resource
import sys
import time
from pathlib import Path

# Read only when a node runs, or the run's own folders: not part of what the parse depends on.
RUN_ONLY_ENV = frozenset(
    {
        "OUTCOMES_AS_OF",
        "OUTCOMES_PREVIOUS_AS_OF",
        "OUTCOMES_DBT_MANIFEST",
        "OUTCOMES_DBT_PARSE_CACHE",
        "DBT_TARGET_PATH",
        "DBT_LOG_PATH",
    }
)
# What makes or unpickles the parse: dbt's packages (the static parser dbt-extractor included), the
# libraries its classes are built on, and the database drivers its adapters import.
VERSIONED = (
    "dbt-core",
    "dbt-adapters",
    "dbt-common",
    "dbt-duckdb",
    "dbt-postgres",
    "dbt-extractor",
    "dbt-semantic-interfaces",
    "dbt-protos",
    "mashumaro",
    "protobuf",
    "msgpack",
    "duckdb",
)
# A command given these parses differently from the plain parse the kept manifest comes from.
PARSE_FLAGS = frozenset({"--vars", "--target", "-t", "--profile", "--profiles-dir"})


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _value(status) -> str:
    return str(getattr(status, "value", status))


def manifest_key(project_dir: Path, environ: dict[str, str]) -> str:
    """sha256 of what dbt's parse of `project_dir` reads (the module's docstring)."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256(f"python {sys.version}\n".encode())
    for package in VERSIONED:
        try:
            digest.update(f"{package} {version(package)}\n".encode())
        except PackageNotFoundError:
            digest.update(f"{package} -\n".encode())
    for name in sorted(environ):
        if name.startswith(("OUTCOMES_", "DBT_")) and not name.startswith("DBT_LOG_") and name not in RUN_ONLY_ENV:
            digest.update(f"env {name}={environ[name]}\n".encode())
    for path in sorted(project_dir.rglob("*")):
        relative = path.relative_to(project_dir)
        if relative.parts[0] in ("target", "logs", "dbt_packages") or not path.is_file():
            continue
        digest.update(f"file {relative}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _project_dir(args: list[str]) -> Path:
    for i, a in enumerate(args):
        if a == "--project-dir" and i + 1 < len(args):
            return Path(args[i + 1])
        if a.startswith("--project-dir="):
            return Path(a.split("=", 1)[1])
    return Path.cwd()


class _ManifestPickler(pickle.Pickler):
    """Pickles a Manifest by its public fields. (dbt's own Manifest.__reduce_ex__ passes its fields
    by position and leaves one out, `fixtures`, in dbt-core 1.11: every lookup after it lands in the
    wrong field.) Its private fields are lookups and caches dbt builds again when first used, and a
    lock (_with_fresh_caches)."""

    def __init__(self, file, protocol=None):
        from dbt.contracts.graph.manifest import Manifest

        super().__init__(file, protocol)
        self._manifest = Manifest  # asked of every object pickled: not imported per object

    def reducer_override(self, obj):
        Manifest = self._manifest
        if type(obj) is Manifest:
            state = {k: v for k, v in vars(obj).items() if not k.startswith("_")}
            return copyreg.__newobj__, (Manifest,), state
        return NotImplemented


def _with_fresh_caches(manifest):
    """The private fields of an unpickled Manifest at their defaults: empty lookups, a new lock."""
    import dataclasses

    from dbt.contracts.graph.manifest import Manifest

    if type(manifest) is not Manifest:
        raise TypeError(f"not a dbt Manifest: {type(manifest).__name__}")
    for f in dataclasses.fields(Manifest):
        if f.name.startswith("_"):
            factory = f.default_factory
            setattr(manifest, f.name, factory() if factory is not dataclasses.MISSING else f.default)
    return manifest


_kept_path: Path | None = None  # the kept manifest this process read or wrote


def _trusted(path: Path) -> bool:
    """Unpickling runs code: only a file, in a folder, that this user owns and nobody else may write."""
    try:
        for p in (path, path.parent):
            st = p.stat()
            if st.st_uid != os.getuid() or st.st_mode & 0o022:
                return False
    except OSError:
        return False
    return True


def load_manifest(args: list[str], phases: dict):
    """The kept manifest of this project, parsed now if none is kept (None without
    OUTCOMES_DBT_MANIFEST, for a command with flags the parse would read, or when the parse fails:
    the command then parses as usual)."""
    prefix = os.environ.get("OUTCOMES_DBT_MANIFEST")
    if not prefix or any(a.split("=", 1)[0] in PARSE_FLAGS for a in args):
        return None
    from dbt.cli.main import dbtRunner

    project_dir = _project_dir(args)
    kept = Path(f"{prefix}.{manifest_key(project_dir, dict(os.environ))}.pickle")
    global _kept_path
    _kept_path = kept
    if kept.exists() and _trusted(kept):
        try:
            with kept.open("rb") as f:
                manifest = _with_fresh_caches(pickle.load(f))
            phases["manifest_kept"] = 1.0
            return manifest
        except Exception:  # a damaged or foreign file: parse anew and replace it
            pass
    parsed = dbtRunner().invoke(["parse", "--project-dir", str(project_dir), "--quiet", "--no-write-json"])
    if not parsed.success or parsed.result is None:
        return None
    manifest = parsed.result
    partial = kept.with_suffix(f".{os.getpid()}.tmp")
    try:
        kept.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with partial.open("wb") as f:
            _ManifestPickler(f, protocol=pickle.HIGHEST_PROTOCOL).dump(manifest)
        os.replace(partial, kept)
    except Exception as error:  # not kept (read-only folder, full disk, a field that will not pickle): run on
        partial.unlink(missing_ok=True)
        print(f"dbt's parsed project not kept ({type(error).__name__}: {error})", file=sys.stderr)
        phases["manifest_kept"] = 0.0
        return manifest
    for other in kept.parent.glob(f"{Path(prefix).name}.*.pickle"):  # the project's earlier versions
        if other != kept:
            other.unlink(missing_ok=True)
    phases["manifest_kept"] = 0.0
    return manifest


# The dbt-core releases drop_unlogged_debug_events was written against (their dbt-common's
# EventManager.fire_event(self, e, level, node, force_warn_or_error_handling), its loggers' `level`
# and its `callbacks`): under any other, the child leaves fire_event as dbt has it.
PATCHED_FOR_DBT_CORE = "1.11"
FIRE_EVENT_PARAMETERS = ("self", "e", "level", "node", "force_warn_or_error_handling")


def fire_event_patchable() -> str | None:
    """None when drop_unlogged_debug_events may patch dbt's fire_event, else why not."""
    import inspect
    from importlib.metadata import PackageNotFoundError, version

    try:
        from dbt_common.events.event_manager import EventManager

        installed = version("dbt-core")
    except (ImportError, PackageNotFoundError) as error:  # dbt unpatched, not a dead child
        return f"dbt's event manager not found ({error})"
    if installed.split(".")[:2] != PATCHED_FOR_DBT_CORE.split("."):
        return f"dbt-core {installed}, not {PATCHED_FOR_DBT_CORE}.x"
    parameters = tuple(inspect.signature(EventManager.fire_event).parameters)
    if parameters != FIRE_EVENT_PARAMETERS:
        return f"EventManager.fire_event{parameters}, not {FIRE_EVENT_PARAMETERS}"
    return None


def drop_unlogged_debug_events() -> bool:
    """dbt turns every event into a protobuf message before it asks its loggers whether they want
    it (dbt_common's EventManager.fire_event): about a thousand debug events in a build (each SQL
    statement, connection and node step), written nowhere when the log file is off
    (DBT_LOG_LEVEL_FILE=none, outcomes/marts/dbt.py) and the console logs at info. Such an event is
    dropped before its message is made when no logger takes debug lines and nothing but dbt's own
    warning tracker listens; warnings, errors, info lines and forced handling go through as before.
    Only under the dbt-core release it was written for, with the fire_event it wraps
    (fire_event_patchable); otherwise dbt runs unpatched, and the child says so on stderr. True when
    patched."""
    why_not = fire_event_patchable()
    if why_not:
        print(f"dbt's debug events not dropped early: {why_not}", file=sys.stderr)
        return False
    from dbt_common.events.base_types import EventLevel
    from dbt_common.events.event_manager import EventManager

    original = EventManager.fire_event
    quiet = (EventLevel.DEBUG, EventLevel.TEST)

    def fire_event(self, e, level=None, node=None, force_warn_or_error_handling=False):
        if (
            not force_warn_or_error_handling
            and (level or e.level_tag()) in quiet
            and all(logger.level not in quiet for logger in self.loggers)
            and all(getattr(c, "__name__", "") == "track_behavior_change_warn" for c in self.callbacks)
        ):
            return None
        return original(self, e, level=level, node=node, force_warn_or_error_handling=force_warn_or_error_handling)

    EventManager.fire_event = fire_event
    return True


def main(argv: list[str]) -> int:
    out, args = argv[0], argv[1:]
    started = time.perf_counter()
    gc.disable()  # while dbt's ~1,400 modules import: they make no garbage worth a collection
    from dbt.cli.main import dbtRunner

    imported_cpu, imported = _cpu(), time.perf_counter()
    # dbt's modules, classes and parsed project live as long as the process: out of the collector's
    # way (gc.freeze), which then runs less often on the objects of the run itself.
    gc.freeze()
    gc.set_threshold(20_000, 50, 1_000)
    gc.enable()
    drop_unlogged_debug_events()
    phases: dict = {}
    manifest = load_manifest(args, phases) if args and args[0] != "parse" else None
    loaded_cpu = _cpu()
    outcome = dbtRunner(manifest=manifest).invoke(args)
    results = []
    for r in getattr(outcome.result, "results", None) or []:
        results.append(
            {
                "unique_id": r.node.unique_id,
                "status": _value(r.status),
                "execution_time": r.execution_time,
                "message": r.message,
            }
        )
    phases.update(
        {
            "import_cpu_s": round(imported_cpu, 3),
            "import_wall_s": round(imported - started, 3),
            "manifest_cpu_s": round(loaded_cpu - imported_cpu, 3),
            "command_cpu_s": round(_cpu() - imported_cpu, 3),
            "command_wall_s": round(time.perf_counter() - imported, 3),
        }
    )
    with open(out, "w") as f:
        json.dump({"results": results, "phases": phases}, f)
    if outcome.success:
        return 0
    if outcome.exception is not None and not results:
        if phases.get("manifest_kept") == 1.0:  # a kept manifest dbt could not run on: parse anew next time
            _kept_path.unlink(missing_ok=True)
        return 2
    return 1


if __name__ == "__main__":
    status = main(sys.argv[1:])
    # Out without tearing down dbt's hundreds of thousands of objects and ~1,400 modules one by one
    # (about half a second of CPU): everything the parent reads is written and closed.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
