"""dbt's child environment (outcomes/marts/dbt.py)."""

from __future__ import annotations

from outcomes.marts.dbt import dbt_env
from outcomes.warehouse import resolve_target


def test_dbt_keeps_its_compiled_modules_in_a_private_folder_when_bytecode_is_not_written(tmp_path, monkeypatch):
    monkeypatch.setenv("OUTCOMES_DBT_PARSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
    env = dbt_env(resolve_target(str(tmp_path / "w.duckdb")), tmp_path)
    assert "PYTHONDONTWRITEBYTECODE" not in env
    assert env["PYTHONPYCACHEPREFIX"] == str(tmp_path / "cache" / "pycache")
    assert (tmp_path / "cache" / "pycache").is_dir()


def test_dbt_leaves_bytecode_as_the_environment_has_it_otherwise(tmp_path, monkeypatch):
    monkeypatch.setenv("OUTCOMES_DBT_PARSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
    env = dbt_env(resolve_target(str(tmp_path / "w.duckdb")), tmp_path)
    assert "PYTHONPYCACHEPREFIX" not in env
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("PYTHONPYCACHEPREFIX", str(tmp_path / "theirs"))
    env = dbt_env(resolve_target(str(tmp_path / "w.duckdb")), tmp_path)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["PYTHONPYCACHEPREFIX"] == str(tmp_path / "theirs")


def test_dbt_keeps_its_parsed_project_as_an_object_and_parses_again_when_an_input_changes(tmp_path, monkeypatch):
    """The child hands dbt the project it parsed last time (dbtRunner(manifest=...)), and parses
    anew when a setting the parse reads changes (outcomes/marts/dbt_child.py)."""
    from outcomes.marts.dbt import parse_cache, run_dbt

    monkeypatch.setenv("OUTCOMES_DBT_PARSE_CACHE", str(tmp_path / "cache"))
    target = resolve_target(str(tmp_path / "w.duckdb"))
    runs = []
    for salt in ("a", "a", "b"):
        monkeypatch.setenv("OUTCOMES_RESEARCH_SALT", salt)
        phases: dict = {}
        run_dbt(target, ["ls", "--resource-type", "model", "--quiet"], "2026-01-31", phases=phases)
        runs.append(phases["manifest_kept"])
    assert runs == [0.0, 1.0, 0.0]
    kept = list(parse_cache(target).parent.glob("*.manifest.*.pickle"))
    assert len(kept) == 1  # the salt's earlier parse is gone with it


def test_a_damaged_or_writable_kept_manifest_is_parsed_anew(tmp_path, monkeypatch):
    """A kept manifest that is not a pickle, or that others may write (unpickling runs code), is
    not used: dbt parses anew, the run succeeds and a good file replaces the bad one."""
    from outcomes.marts.dbt import parse_cache, run_dbt

    monkeypatch.setenv("OUTCOMES_DBT_PARSE_CACHE", str(tmp_path / "cache"))
    target = resolve_target(str(tmp_path / "w.duckdb"))

    def kept_run() -> float:
        phases: dict = {}
        run_dbt(target, ["ls", "--resource-type", "model", "--quiet"], "2026-01-31", phases=phases)
        return phases["manifest_kept"]

    assert kept_run() == 0.0
    [kept] = parse_cache(target).parent.glob("*.manifest.*.pickle")
    kept.write_bytes(b"not a pickle")
    assert kept_run() == 0.0
    assert kept.read_bytes()[:1] == b"\x80"  # a pickle again
    assert kept_run() == 1.0
    kept.chmod(0o666)
    assert kept_run() == 0.0


def test_a_command_with_parse_flags_does_not_use_the_kept_manifest(monkeypatch, tmp_path):
    from outcomes.marts.dbt_child import load_manifest

    monkeypatch.setenv("OUTCOMES_DBT_MANIFEST", str(tmp_path / "m"))
    for flag in (["--vars", "{a: 1}"], ["--target=other"], ["--profiles-dir", "/x"]):
        assert load_manifest(["build", *flag], {}) is None
    assert not list(tmp_path.iterdir())  # nothing parsed, nothing kept


def test_the_parsed_project_is_keyed_by_every_file_and_setting_the_parse_reads(tmp_path):
    from outcomes.marts.dbt_child import manifest_key

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.sql").write_text("select 1")
    env = {"OUTCOMES_RESEARCH_SALT": "a", "OUTCOMES_AS_OF": "2026-01-31", "DBT_TARGET_PATH": "/x", "HOME": "/h"}
    key = manifest_key(tmp_path, env)
    # What only a run reads (its dates and folders), or what dbt never reads, keeps the key.
    assert manifest_key(tmp_path, {**env, "OUTCOMES_AS_OF": "2026-02-28", "DBT_TARGET_PATH": "/y", "HOME": "/g"}) == key
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "partial_parse.msgpack").write_bytes(b"x")
    assert manifest_key(tmp_path, env) == key
    assert manifest_key(tmp_path, {**env, "OUTCOMES_RESEARCH_SALT": "b"}) != key
    assert manifest_key(tmp_path, {**env, "OUTCOMES_DBT_TARGET": "postgres"}) != key
    (tmp_path / "models" / "m.sql").write_text("select 2")
    assert manifest_key(tmp_path, env) != key


def test_dbt_debug_events_nobody_logs_are_dropped_before_their_message_is_made(monkeypatch):
    import dbt_common.events.event_manager as em
    from dbt_common.events.base_types import EventLevel
    from dbt_common.events.types import Note

    from outcomes.marts import dbt_child

    monkeypatch.setattr(em.EventManager, "fire_event", em.EventManager.fire_event)  # restored afterwards
    made = []
    real = em.msg_from_base_event
    monkeypatch.setattr(em, "msg_from_base_event", lambda e, level=None: made.append(level) or real(e, level=level))
    assert dbt_child.drop_unlogged_debug_events()
    manager = em.EventManager()
    lines = []

    class Console:
        level = EventLevel.INFO

        def filter(self, msg):
            return True

        def write_line(self, msg):
            lines.append(msg.info.level)

    manager.loggers.append(Console())
    manager.fire_event(Note(msg="a statement"), level=EventLevel.DEBUG)
    assert made == [] and lines == []
    manager.fire_event(Note(msg="a node done"), level=EventLevel.INFO)
    assert lines == ["info"]
    Console.level = EventLevel.DEBUG  # a logger that writes debug lines gets them all
    manager.fire_event(Note(msg="a statement"), level=EventLevel.DEBUG)
    assert lines == ["info", "debug"]


def test_dbt_fire_event_is_patched_only_under_the_release_it_was_written_for(monkeypatch, capsys):
    import importlib.metadata

    import dbt_common.events.event_manager as em

    from outcomes.marts import dbt_child

    monkeypatch.setattr(em.EventManager, "fire_event", em.EventManager.fire_event)  # restored afterwards
    unpatched = em.EventManager.fire_event
    real_version = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, "version", lambda name: "1.12.0" if name == "dbt-core" else real_version(name)
    )
    assert dbt_child.fire_event_patchable() == "dbt-core 1.12.0, not 1.11.x"
    assert not dbt_child.drop_unlogged_debug_events() and em.EventManager.fire_event is unpatched
    assert "dbt-core 1.12.0" in capsys.readouterr().err
    monkeypatch.setattr(importlib.metadata, "version", real_version)

    def fire_event(self, e, level=None, node=None):  # a release whose fire_event takes other arguments
        return unpatched(self, e, level=level, node=node)

    monkeypatch.setattr(em.EventManager, "fire_event", fire_event)
    assert "not ('self', 'e', 'level', 'node', 'force_warn_or_error_handling')" in dbt_child.fire_event_patchable()
    assert not dbt_child.drop_unlogged_debug_events() and em.EventManager.fire_event is fire_event
    monkeypatch.setattr(em.EventManager, "fire_event", unpatched)
    assert dbt_child.fire_event_patchable() is None

    def missing(name):  # dbt-core's metadata gone (a vendored or broken install): unpatched, no crash
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert "not found" in dbt_child.fire_event_patchable()
    assert not dbt_child.drop_unlogged_debug_events() and em.EventManager.fire_event is unpatched
