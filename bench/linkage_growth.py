"""Benchmark: how linkage time and peak memory grow with the population, first run and monthly run.

    python bench/linkage_growth.py [--persons 250000,500000,1000000,2000000] [--root /tmp/bench-growth]
                                   [--json docs/data/linkage-growth.json] [--plot docs/img/linkage-growth.png]
                                   [--doc docs/scale.md] [--force] [--truth] [--event-store]

For each population size it synthesises a population (`outcomes synth --out ROOT/popN --persons N`,
timed; the folder is reused when it holds a population already), then measures in fresh processes
(bench/_measure.in_child) the real `linkage.run.link()` into a fresh DuckDB warehouse, reading
the records straight from the deliveries (linkage.records.records_from_deliveries, as
bench/linkage_scale.py does):

- the first link: every month but the last (as of the last-but-one extract date), one process;
- one monthly run: the last month alone, into the same warehouse, in a second process (so its
  peak memory is its own), as the monthly refresh would.

With --event-store each run reads the warehouse's event store, as `outcomes link` does: before
each run a fresh process ingests the deliveries it adds (`outcomes.ingest.Ingestor`: every month but
the last, then the last; timed and reported apart, `ingest_s`), and `link()` is given no records,
so the monthly run reads only the records with events since the first (the ledger) and its peak
is `link()`'s own, not that of a frame of every record read from the deliveries in the bench.

Each gives wall time of link(), time reading the deliveries, peak resident memory, records, new
records and seconds per stage (LinkResult.stages). A CPU calibration (bench/_measure.
calibration_seconds) is measured in the same sitting, before and after each size's runs, and times
are also given as multiples of their mean. All figures go to a JSON file; sizes measured already
are kept unless --force, so sizes can be measured in separate sittings. From all sizes in the JSON it prints the table,
the monthly/first ratios against the issue's targets and the growth exponent (least-squares
slope of log time on log records), plots time and peak memory against records (log-log) and
writes the table between the markers of the docs page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

from _measure import calibration_seconds, in_child

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PERSONS = (250_000, 500_000, 1_000_000, 2_000_000)
RUNS = ("first", "monthly")
# the targets (issue 14, "Done when")
TARGET_MONTHLY_TIME_RATIO = 0.10
TARGET_MONTHLY_PEAK_MIB = 2 * 1024
TARGET_FIRST_PEAK_MIB_AT_1M = 6 * 1024
TARGET_EXPONENT = 1.1
BEGIN, END = "<!-- linkage-growth:begin -->", "<!-- linkage-growth:end -->"

SYNTH = """
import subprocess, time
t = time.perf_counter()
subprocess.run([{outcomes!r}, "synth", "--out", {out!r}, "--persons", "{persons}", "--overwrite"],
               check=True, stdout=subprocess.DEVNULL)
result = {{"synth_s": time.perf_counter() - t}}
"""

LINK = """
import datetime as dt, time
from pathlib import Path
from linkage.records import records_from_deliveries
from linkage.run import link
from outcomes.eventstore import connect
from outcomes.warehouse import resolve_target
landing = Path({root!r}, "landing")
truth = Path({root!r}, "truth") if {with_truth!r} else None
as_of = dt.date.fromisoformat({as_of!r}) if {as_of!r} else None
t = time.perf_counter()
box = list(records_from_deliveries(landing, as_of=as_of))  # (records, last extract date)
load_s = time.perf_counter() - t
n_records, last = len(box[0]), box[1]
with connect(resolve_target({warehouse!r})) as backend:
    if {memory_limit!r}:  # DuckDB's buffer pool counts in the process's memory
        backend.con.execute("set memory_limit = '{memory_limit}'")
    t = time.perf_counter()
    # the list gives up its reference: link() holds the only one and can free it
    r = link(backend, truth=truth, records=box.pop(0), as_of=as_of or last, chunk={chunk!r})
    link_s = time.perf_counter() - t
result = {{"as_of": str(as_of or last), "records": n_records, "load_s": load_s, "link_s": link_s,
          "records_new": r.records_new, "stages": {{k: float(v) for k, v in r.stages.items()}}}}
# kept when LinkResult has them (the figures above are all the benchmark needs)
result.update({{k: getattr(r, k) for k in ("run_id", "variants", "candidate_pairs", "chunks", "links", "reviews")
               if isinstance(getattr(r, k, None), int)}})
"""

# --event-store: the deliveries up to `until` (all when empty) ingested into the warehouse, then
# link() reading the event store (records: the as-of state after the run, `records_read` what it read)
INGEST = """
import datetime as dt, time
from pathlib import Path
from outcomes.eventstore import connect
from outcomes.ingest import Ingestor
from outcomes.warehouse import resolve_target
until = dt.date.fromisoformat({until!r}) if {until!r} else None
with connect(resolve_target({warehouse!r})) as backend:
    t = time.perf_counter()
    Ingestor(backend, Path({archive!r}), horizon=dt.date.fromisoformat({last!r})).ingest(
        Path({landing!r}), until=until)
    result = {{"ingest_s": time.perf_counter() - t}}
"""

LINK_STORE = """
import datetime as dt, time
from pathlib import Path
from linkage.run import link
from outcomes.eventstore import connect
from outcomes.warehouse import resolve_target
truth = Path({root!r}, "truth") if {with_truth!r} else None
as_of = dt.date.fromisoformat({as_of!r}) if {as_of!r} else None
options = {options!r}
with connect(resolve_target({warehouse!r})) as backend:
    t = time.perf_counter()
    r = link(backend, truth=truth, as_of=as_of, chunk={chunk!r}, **options)
    link_s = time.perf_counter() - t
    with backend.transaction() as s:  # the as-of state the run leaves (after link()'s time)
        held = int(s.scalar("select count(*) from linkage.record_keys where present"))
result = {{"as_of": str(r.as_of), "records": held, "records_read": r.records_read, "load_s": 0.0,
          "link_s": link_s, "records_new": r.records_new, "incremental": r.incremental, "delta": r.delta,
          "stages": {{k: float(v) for k, v in r.stages.items()}}}}
result.update({{k: getattr(r, k) for k in ("run_id", "variants", "candidate_pairs", "chunks", "links", "reviews")
               if isinstance(getattr(r, k, None), int)}})
"""


# ---- pure parts (tests/test_bench_growth.py) -------------------------------------------------


def growth_exponent(records: list[float], seconds: list[float]) -> float | None:
    """Least-squares slope of log(seconds) on log(records); None without two distinct sizes."""
    pts = [(math.log(n), math.log(s)) for n, s in zip(records, seconds, strict=True) if n > 0 and s > 0]
    if len({x for x, _ in pts}) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)


def pending(figures: dict, persons: list[int], force: bool) -> list[int]:
    """The sizes still to measure: all with `force`, else those without both runs in `figures`."""
    have = figures.get("sizes", {})
    return [n for n in persons if force or not all(run in have.get(str(n), {}) for run in RUNS)]


def merge(figures: dict, persons: int, entry: dict) -> dict:
    """`figures` with the entry of `persons` set (replaced whole); other sizes kept as they are."""
    sizes = {**figures.get("sizes", {}), str(persons): entry}
    return {**figures, "sizes": dict(sorted(sizes.items(), key=lambda kv: int(kv[0])))}


def series(figures: dict, run: str, measure: str) -> tuple[list[int], list[float]]:
    """(records, measure) of one run over the sizes measured, by records."""
    rows = sorted((e[run]["records"], e[run][measure]) for e in figures.get("sizes", {}).values() if run in e)
    return [r for r, _ in rows], [m for _, m in rows]


def calibrated(figures: dict, run: str) -> tuple[list[int], list[float]]:
    """(records, link() time as a multiple of its size's calibration) of one run, by records."""
    rows = sorted(
        (e[run]["records"], e[run]["link_s"] / e["calibration_s"])
        for e in figures.get("sizes", {}).values()
        if run in e
    )
    return [r for r, _ in rows], [m for _, m in rows]


def load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {"sizes": {}}


def cut_date(landing: Path) -> dt.date:
    """The last-but-one extract date in `landing`: the first run links up to it."""
    months = sorted({f.name.split("_")[-2] for f in landing.glob("*.parquet")})
    if len(months) < 2:
        raise SystemExit(f"{landing}: fewer than two monthly deliveries")
    return dt.date(int(months[-2][:4]), int(months[-2][4:6]), int(months[-2][6:]))


# ---- reports ---------------------------------------------------------------------------------


def _fmt_stages(stages: dict) -> str:
    return ", ".join(f"{k} {v:.0f}" for k, v in stages.items())


def table_lines(figures: dict) -> list[str]:
    out = [
        "| people | run | records | new records | link() s | × calibration | process CPU s "
        "| reading deliveries s | peak MiB | calibration s | stages (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, e in figures.get("sizes", {}).items():
        for run in RUNS:
            if run not in e:
                continue
            f = e[run]
            out.append(
                f"| {int(n):,} | {run} | {f['records']:,} | {f['records_new']:,} | {f['link_s']:,.0f} | "
                f"{f['link_s'] / e['calibration_s']:,.0f} | {f['cpu_s']:,.0f} | {f['load_s']:,.0f} | "
                f"{f['peak_mib']:,.0f} | "
                f"{e['calibration_s']:.2f} | {_fmt_stages(f['stages'])}"
                + (
                    f"; ingest {f['ingest_s']:,.0f} s apart, peak {f['ingest_peak_mib']:,.0f} MiB"
                    if "ingest_s" in f
                    else ""
                )
                + (f"; {f['records_read']:,} records read" if f.get("incremental") else "")
                + " |"
            )
    return out


def summary_lines(figures: dict) -> list[str]:
    out = []
    for n, e in figures.get("sizes", {}).items():
        if not all(run in e for run in RUNS):
            continue
        first, month = e["first"], e["monthly"]
        tr, mr = month["link_s"] / first["link_s"], month["peak_mib"] / first["peak_mib"]
        out.append(
            f"- {int(n):,} people: monthly/first time {tr:.2f} (target ≤ {TARGET_MONTHLY_TIME_RATIO:.2f}: "
            f"{'met' if tr <= TARGET_MONTHLY_TIME_RATIO else 'not met'}), "
            f"CPU time {month['cpu_s'] / first['cpu_s']:.2f}, peak memory {mr:.2f}; "
            f"monthly peak {month['peak_mib']:,.0f} MiB (target ≤ {TARGET_MONTHLY_PEAK_MIB:,} MiB: "
            f"{'met' if month['peak_mib'] <= TARGET_MONTHLY_PEAK_MIB else 'not met'})"
            + (
                f"; first peak {first['peak_mib']:,.0f} MiB (target at 1M ≤ {TARGET_FIRST_PEAK_MIB_AT_1M:,} MiB: "
                f"{'met' if first['peak_mib'] <= TARGET_FIRST_PEAK_MIB_AT_1M else 'not met'})"
                if int(n) == 1_000_000
                else ""
            )
        )
    synth = [
        f"{int(n):,} people {e['synth']['synth_s']:,.0f} s, peak {e['synth']['peak_mib']:,.0f} MiB"
        for n, e in figures.get("sizes", {}).items()
        if "synth_s" in e.get("synth", {})
    ]
    if synth:
        out.append("- synthesis (`outcomes synth`, when the population was made): " + "; ".join(synth))
    for run in RUNS:
        for measure, label in (("link_s", "time"), ("cpu_s", "process CPU time"), ("peak_mib", "peak memory")):
            recs, vals = series(figures, run, measure)
            k = growth_exponent(recs, vals)
            if k is None:
                out.append(f"- growth exponent of {run}-run {label}: needs two sizes")
                continue
            target = (
                f" (target ≤ {TARGET_EXPONENT}: {'met' if k <= TARGET_EXPONENT else 'not met'})"
                if (run, measure) == ("first", "link_s")
                else ""
            )
            out.append(
                f"- growth exponent of {run}-run {label} against records, {len(recs)} sizes "
                f"({recs[0]:,}–{recs[-1]:,} records): {k:.2f}{target}"
            )
            if measure == "link_s":  # the sizes' sittings may have had the shared cores to different degrees
                kc = growth_exponent(*calibrated(figures, run))
                out.append(f"  - the same in multiples of each size's calibration: {kc:.2f}")
    return out


def _plain(value: float, _pos=None) -> str:
    """A tick label: 500, 2k, 1.5M."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def plot(figures: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    panels = (
        (axes[0], "link_s", "link() wall time (s)"),
        (axes[1], "cpu_s", "CPU time of the process (s)"),
        (axes[2], "peak_mib", "peak RSS (MiB)"),
    )
    for ax, measure, unit in panels:
        for run, marker in zip(RUNS, ("o", "s"), strict=True):
            recs, vals = series(figures, run, measure)
            if not recs:
                continue
            k = growth_exponent(recs, vals)
            label = f"{run} run" + ("" if k is None else f" (exponent {k:.2f})")
            if measure == "link_s" and k is not None:
                label = label[:-1] + f"; {growth_exponent(*calibrated(figures, run)):.2f} in calibrations)"
            ax.plot(recs, vals, marker=marker, label=label)
            people = {e[run]["records"]: int(n) for n, e in figures["sizes"].items() if run in e}
            for x, y in zip(recs, vals, strict=True):
                ax.annotate(
                    f"{people[x] / 1000:,.0f}k",
                    (x, y),
                    textcoords="offset points",
                    xytext=(4, 4 if run == "first" else -11),
                    fontsize=8,
                )
        recs, vals = series(figures, "first", measure)
        if measure in ("link_s", "cpu_s") and recs:  # the target's slope through the smallest first run
            ends = [recs[0], recs[-1] * 1.5]
            ax.plot(
                ends,
                [vals[0] * (x / recs[0]) ** TARGET_EXPONENT for x in ends],
                ls=":",
                color="grey",
                label=f"slope {TARGET_EXPONENT} (target)",
            )
        if measure == "peak_mib":
            ax.axhline(TARGET_MONTHLY_PEAK_MIB, ls="--", color="C1", lw=0.8, label="2 GiB (monthly target)")
            ax.axhline(TARGET_FIRST_PEAK_MIB_AT_1M, ls="--", color="C0", lw=0.8, label="6 GiB (first run at 1M)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        # a decade or so around the points (one size alone still gives readable ticks), plain numbers
        xs = [x for run in RUNS for x in series(figures, run, measure)[0]]
        ys = [y for run in RUNS for y in series(figures, run, measure)[1]]
        if xs:
            mid, half = math.sqrt(min(xs) * max(xs)), max(math.sqrt(max(xs) / min(xs)) * 1.6, 2.5)
            ax.set_xlim(mid / half, mid * half)
            ax.set_ylim(min(ys) / 2, max(ys + ([TARGET_FIRST_PEAK_MIB_AT_1M] if measure == "peak_mib" else [])) * 2)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(FuncFormatter(_plain))
            axis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("records linked (as-of state)")
        ax.set_ylabel(unit)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    axes[0].set_title("link() wall time against records")
    axes[1].set_title("CPU time (user + system) against records")
    axes[2].set_title("peak memory against records")
    fig.suptitle("linkage.run.link(): first run and one monthly run (bench/linkage_growth.py)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_doc(figures: dict, doc: Path) -> bool:
    """Replace the text between the markers of `doc` with the table and summary; False without them."""
    if not doc.exists():
        return False
    text = doc.read_text()
    if BEGIN not in text or END not in text:
        return False
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    # the commit measured, and the last commit before it that changed linkage/ (the code linking)
    measured = sorted(
        {
            (e["measured_at"][:10], e["commit"][:10], _git("log", "-1", "--format=%h", e["commit"], "--", "linkage"))
            for e in figures["sizes"].values()
        }
    )
    body = [
        "",
        *table_lines(figures),
        "",
        *summary_lines(figures),
        "",
        "Measured "
        + "; ".join(f"{d} at commit `{c}`" + (f" (linkage/ as of `{k}`)" if k else "") for d, c, k in measured)
        + ".",
        "",
    ]
    doc.write_text(head + BEGIN + "\n".join(body) + END + tail)
    return True


# ---- measurement -----------------------------------------------------------------------------


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False).stdout.strip()


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%H:%M:%S")


def ensure_population(persons: int, out: Path) -> dict:
    """Synthesise `persons` people into `out` (timed) unless a finished population is there."""
    marker = out / "synth-measured.json"
    if (out / "landing").is_dir() and any((out / "landing").glob("*.parquet")):
        if marker.exists():
            return {**json.loads(marker.read_text()), "reused": True}
        return {"reused": True}
    print(f"[{_now()}] synthesising {persons:,} people into {out}", flush=True)
    outcomes = str(Path(sys.executable).parent / "outcomes")
    r = in_child(SYNTH.format(outcomes=outcomes, out=str(out), persons=persons))
    synth = {"synth_s": r["synth_s"], "peak_mib": r["peak_children_mib"], "reused": False}
    marker.write_text(json.dumps(synth) + "\n")
    print(f"[{_now()}] synthesised in {synth['synth_s']:.0f} s, peak {synth['peak_mib']:,.0f} MiB", flush=True)
    return synth


def measure(persons: int, args: argparse.Namespace) -> dict:
    population = (args.populations or args.root) / f"pop{persons}"
    synth = ensure_population(persons, population)
    before = calibration_seconds()
    print(f"[{_now()}] calibration (300k HMAC-SHA256): {before:.2f} s", flush=True)
    warehouse = args.root / f"w{persons}.duckdb"
    archive = args.root / f"archive{persons}"  # --event-store: the ingest's copies of the deliveries
    for p in warehouse.parent.glob(warehouse.name + "*"):
        p.unlink()
    shutil.rmtree(archive, ignore_errors=True)
    cut = cut_date(population / "landing")
    last = max(population.joinpath("landing").glob("*.parquet")).name.split("_")[-2]
    last = f"{last[:4]}-{last[4:6]}-{last[6:]}"
    entry = {
        "persons": persons,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "HEAD"),
        "linkage_changed": bool(_git("status", "--porcelain", "--", "linkage")),
        "calibration_before_s": before,
        "synth": synth,
        "truth": args.truth,
        "duckdb_memory": args.duckdb_memory,
        "event_store": args.event_store,
        "memory_limit": args.memory_limit,
    }
    for run, as_of in (("first", cut.isoformat()), ("monthly", "")):
        print(f"[{_now()}] {persons:,} people: {run} run" + (f" as of {as_of}" if as_of else ""), flush=True)
        if args.event_store:
            fill = {"warehouse": str(warehouse), "archive": str(archive), "last": last}
            ingested = in_child(INGEST.format(landing=str(population / "landing"), until=as_of, **fill))
            print(
                f"[{_now()}]   ingested in {ingested['ingest_s']:.0f} s, peak {ingested['peak_mib']:,.0f} MiB",
                flush=True,
            )
            options = {"memory_limit": args.memory_limit} if args.memory_limit else {}
            r = in_child(
                LINK_STORE.format(
                    root=str(population),
                    warehouse=str(warehouse),
                    as_of=as_of,
                    chunk=args.chunk,
                    with_truth=args.truth,
                    options=options,
                )
            )
            r.update(ingest_s=ingested["ingest_s"], ingest_peak_mib=ingested["peak_mib"])
        else:
            r = in_child(
                LINK.format(
                    root=str(population),
                    warehouse=str(warehouse),
                    as_of=as_of,
                    chunk=args.chunk,
                    memory_limit=args.duckdb_memory,
                    with_truth=args.truth,
                )
            )
        entry[run] = r
        print(
            f"[{_now()}]   {r['records']:,} records ({r['records_new']:,} new"
            + (f", {r['records_read']:,} read" if r.get("incremental") else "")
            + f"): link() {r['link_s']:.0f} s "
            f"({r['link_s'] / before:.0f} x calibration before), reading deliveries {r['load_s']:.0f} s, "
            f"peak {r['peak_mib']:,.0f} MiB; stages (s): {_fmt_stages(r['stages'])}",
            flush=True,
        )
    # the cores are shared: calibrated again after the runs, and their mean is the size's reference
    entry["calibration_after_s"] = calibration_seconds()
    entry["calibration_s"] = (before + entry["calibration_after_s"]) / 2
    print(f"[{_now()}] calibration after the runs: {entry['calibration_after_s']:.2f} s", flush=True)
    if not args.keep_warehouse:
        for p in warehouse.parent.glob(warehouse.name + "*"):
            p.unlink()
        shutil.rmtree(archive, ignore_errors=True)
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--persons",
        default=",".join(str(n) for n in DEFAULT_PERSONS),
        help="population sizes, comma-separated (default %(default)s)",
    )
    parser.add_argument("--root", type=Path, default=Path("/tmp/bench-growth"), help="populations and warehouses")
    parser.add_argument("--json", type=Path, default=REPO / "docs" / "data" / "linkage-growth.json")
    parser.add_argument("--plot", type=Path, default=REPO / "docs" / "img" / "linkage-growth.png")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "scale.md", help="table between its markers")
    parser.add_argument("--force", action="store_true", help="measure sizes already in the JSON again")
    parser.add_argument("--truth", action="store_true", help="with ground truth (quality report: slower)")
    parser.add_argument(
        "--event-store",
        action="store_true",
        help="ingest the deliveries first (apart from link()'s time); link() reads the event store",
    )
    parser.add_argument("--memory-limit", default="", help="--event-store: link()'s memory budget, e.g. 4GB")
    parser.add_argument("--populations", type=Path, help="where the popN folders are (read only; default --root)")
    parser.add_argument("--chunk", type=int, default=1_000_000)
    parser.add_argument("--duckdb-memory", default="4GB", help="DuckDB memory_limit for the warehouse connection")
    parser.add_argument("--keep-warehouse", action="store_true")
    parser.add_argument(
        "--stop-after-first",
        type=float,
        metavar="SECONDS",
        help="measure no larger size once a size's first link() took longer than this",
    )
    parser.add_argument("--report-only", action="store_true", help="measure nothing: table, plot, doc from the JSON")
    args = parser.parse_args()
    persons = sorted(int(n.replace("_", "")) for n in args.persons.split(",") if n.strip())
    args.root.mkdir(parents=True, exist_ok=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    figures = load(args.json)
    todo = [] if args.report_only else pending(figures, persons, args.force)
    kept = [n for n in persons if n not in todo and str(n) in figures["sizes"]]
    if kept and not args.report_only:
        print("kept from " + str(args.json) + ": " + ", ".join(f"{n:,}" for n in kept) + " (--force to measure again)")
    for n in todo:
        free = shutil.disk_usage(args.root).free / 2**30
        print(f"[{_now()}] {n:,} people ({free:.0f} GiB free under {args.root})", flush=True)
        figures = merge(figures, n, measure(n, args))
        args.json.write_text(json.dumps(figures, indent=2) + "\n")  # after each size: a later one may fail
        took = figures["sizes"][str(n)]["first"]["link_s"]
        if args.stop_after_first is not None and took > args.stop_after_first and n != todo[-1]:
            print(f"first link took {took:.0f} s > {args.stop_after_first:.0f} s: larger sizes not measured")
            break
    if not figures["sizes"]:
        raise SystemExit("no figures yet")
    print()
    print("\n".join(table_lines(figures)))
    print()
    print("\n".join(summary_lines(figures)))
    plot(figures, args.plot)
    print(f"\nfigures: {args.json}\nplot: {args.plot}")
    if write_doc(figures, args.doc):
        print(f"table written into {args.doc}")


if __name__ == "__main__":
    main()
