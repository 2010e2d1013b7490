"""An independent error model for evaluating linkage (issue 11, item 2).

It shares no code with `outcomes.synth` — it is the check on the linker that the synthetic
population cannot be, because the two were written with the same assumptions. It uses only the
providers' tool (`outcomes.pseudonymise`), the contract (`outcomes.contract`) and reference data
(`outcomes.reference`).

Input: any `outcomes synth` output folder (`--noise 0` is the natural choice; the identity
blocks of the input are discarded, only its source columns and truth are read). Every true
person gets an identity in clear of their own — a forename of their sex and birth cohort and a
surname from the name lists in `errormodel/data/`, the date of birth and sex of the truth, a
postcode district of their local authority — and every record then takes the named error
classes of `errormodel.rates.ERROR_CLASSES` at their rates times `scale`. Each record's draws
come from a hash of (seed, source, record_id), so a treatment episode has the same identity in
every monthly snapshot. The identities are pseudonymised with a fixed evaluation key.

Output folder OUT:

- `OUT/landing/`: the same deliveries (names, rows, source columns) with new identity blocks and
  manifests (sha256, row_count); they pass the spec checks synth's deliveries pass.
- `OUT/truth/records.parquet`, `OUT/truth/persons.parquet`: as synth's (the namesakes' dates of
  birth and `twin_of` updated), so `outcomes link --truth OUT/truth` and tests/oracle work as is.
- `OUT/truth/errors.parquet`: source, record_id, error_class — one row per class applied to a
  record. Person-level classes are listed on the records they changed (the records after a
  marriage or a move, the records under a second person key).
- `OUT/truth/namesakes.parquet`: person_a, person_b, kind (`twin` or `father_son`): different
  people who share every identifier but one; linking any record of one to the other is an error.
- `OUT/truth/identities.parquet`: the identity in clear of every record, as delivered;
  `OUT/truth/persons_clear.parquet`: each person's identity before any error (and the married
  surname and the district moved to, where those happen, and the person's error proneness).

Use::

    from errormodel import generate, pairs_by_class

    result = generate(Path("clean"), Path("eval"), scale=1.0, seed=0)
    print(result.counts)                 # per class and source: eligible, applied, target, rate
    pairs = pairs_by_class(Path("eval/truth"))

`pairs_by_class(truth_dir)` lists the true-match record pairs (within and across sources) whose
identities differ by each class: columns error_class, person_id, source_a, record_id_a,
source_b, record_id_b. A pair is listed under a class when the class was applied to at least
one of its records and the fields the class changes differ between the two (for the person-key
classes: the keys differ within a source, or the pair crosses sources). Recall per class is the
share of a class's pairs whose two records the linkage puts in one person;
`recall_by_class(truth_dir, links)` computes it from `links` (source, record_id, person: the
linked person of each record, e.g. the spine as of the last extract date), and
`namesake_links(truth_dir, links)` says for each namesake pair whether any record of one was
linked to any record of the other (a false link)::

    links = spine[["source", "record_id", "person_key"]].rename(columns={"person_key": "person"})
    recall_by_class(Path("eval/truth"), links)   # error_class, pairs, linked, recall
    namesake_links(Path("eval/truth"), links)    # person_a, person_b, kind, linked

Command line: `python -m errormodel --clean DIR --out DIR [--scale 3] [--seed S]` prints the
applied rate of each class beside its target.
"""

from errormodel.deliveries import CleanPopulationError
from errormodel.generate import EVALUATION_KEY, ErrorModelResult, generate
from errormodel.pairs import namesake_links, pairs_by_class, recall_by_class
from errormodel.rates import ERROR_CLASSES, ErrorClass

__all__ = [
    "ERROR_CLASSES",
    "EVALUATION_KEY",
    "CleanPopulationError",
    "ErrorClass",
    "ErrorModelResult",
    "generate",
    "namesake_links",
    "pairs_by_class",
    "recall_by_class",
]
