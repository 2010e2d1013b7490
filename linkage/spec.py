"""What a linkage compares and how it blocks, as data: one engine serves every data set.

A `Spec` names the blocking passes, the comparisons (each with its levels), the EM sessions,
the deterministic rule that sets the prior, and the corroboration rules. The pseudonymised
identity block of the extracts (`IDENTITY`) is one spec; plain fields (names, addresses, ids in
clear, as in FEBRL) are another, built by `linkage.plain`.

Comparison kinds, levels numbered from 0 (wholly different) up to the exact level (-1 is
missing, which counts neither for nor against):
- ``name``: a token (HMAC or clear value), equal = exact; else a learned alias pair (two tokens
  that one source already knows to be one person's, e.g. BILL and WILLIAM) if `aliases`; else
  Dice of the 512-bit bigram Bloom filters at each threshold; else 0.
- ``string``: a clear value; equal = exact; else similarity (``dice`` of bigram sets,
  ``jaro_winkler``, or ``edit``: Damerau-Levenshtein distance, at most each threshold).
- ``date``: equal; day and month swapped; one of day, month, year different; within
  `within_days`; else 0.
- ``exact``: equal or not; values in `missing` count as missing.
- ``key``: a source's own person key (`column` is the variant's node, which holds it), compared
  within each source of `groups` apart: level 2i when both records are of source i and keyed
  differently, 2i + 1 when they hold the same key, missing otherwise (other sources, or a record
  without a key). m and u are estimated per source, as shares within that source's two levels
  (`linkage.engine.estimate_key_m`): how often one person holds two keys differs by source (PNC
  duplicate nominals are commoner than duplicate NINos). Evidence, never a boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from outcomes.contract import SOURCES


@dataclass(frozen=True)
class Comparison:
    name: str
    kind: str  # name | string | date | exact | key
    column: str
    bloom: str | None = None  # name: column of base64 Bloom filters (else made from the clear value)
    method: str = "dice"  # string: dice | jaro_winkler | edit
    thresholds: tuple[float, ...] = ()
    within_days: int | None = None  # date: a level for dates this close (aliases, keying)
    aliases: bool = False  # name: a level for learned alias pairs
    # name: column of initials; a level (the lowest above "different") for a name given as an
    # initial only (old NDTMS records) that is the other's initial. Twins' names are both whole.
    initial: str | None = None
    tf: bool = False  # term-frequency adjustment of exact agreement
    # TF within groups of this column (a date column: by its year): forenames follow the fashion
    # of their birth cohort, so JACK among people born in 2005 says less than JACK overall.
    tf_by: str | None = None
    missing: tuple = ()
    groups: tuple[str, ...] = ()  # key: the sources whose keys are compared, each apart

    @property
    def levels(self) -> int:
        if self.kind == "name":
            return 2 + len(self.thresholds) + int(self.aliases) + int(self.initial is not None)
        if self.kind == "string":
            return 2 + len(self.thresholds)
        if self.kind == "date":
            return 4 + int(self.within_days is not None)
        if self.kind == "key":
            return 2 * len(self.groups)
        return 2  # exact

    @property
    def exact(self) -> int:
        return self.levels - 1


@dataclass(frozen=True)
class Pass:
    """Pairs whose `on` columns (left) equal the `right_on` columns (right; default `on`)."""

    name: str
    on: tuple[str, ...]
    right_on: tuple[str, ...] | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.on, *(self.right_on or ()))))

    @property
    def symmetric(self) -> bool:
        return self.right_on is None or tuple(self.right_on) == tuple(self.on)


@dataclass(frozen=True)
class Spec:
    name: str
    comparisons: tuple[Comparison, ...]
    passes: tuple[Pass, ...]
    # EM sessions: pairs of one pass, and the comparisons whose m it estimates (those the pass
    # does not block on: blocked columns agree by construction and would bias the estimate).
    sessions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # The prior: pairs exact on these comparisons, over an assumed recall of that rule.
    prior_rule: tuple[str, ...] = ()
    prior_recall: float = 0.7
    # Pairs only across sources (link only), never within one.
    link_only: bool = False
    # Corroboration: a link needs, over all variants of the two nodes, some agreement (level >=
    # 1) on these comparisons where both have a value; else it goes to clerical review.
    corroborate: dict[str, str] = field(default_factory=dict)
    u_pairs: int = 300_000  # random pairs for the u-probabilities
    # A block holding more identities than this (a default or placeholder value shared by
    # thousands: a clamped birth date) is left to the other passes; the report counts them.
    # (Passes keyed differently on their two sides, swapped names or dates, are not capped.)
    max_block: int = 200
    # Decisions from the model's match probability: link at or above `link_probability`, review
    # down to `review_probability`, non-link below (weights are log2 odds of these).
    link_probability: float = 0.95
    review_probability: float = 0.1
    # A pair below the link level is sent to clerical review from this probability up: below it the
    # model holds two people likelier than one (at 100,000 people 96 of the 710 such pairs between
    # 0.1 and 0.5 were one person). The pairs scored from `review_probability` up are kept all the
    # same: the model's expected recall reads them. docs/linkage.md, The clerical review queue.
    queue_probability: float = 0.5
    # The link level holds as the population grows: past this many identities (variants), a link
    # reads the pair's odds under the prior a population of this size would have (the same matches
    # per identity), not under the smaller prior of the larger population (`Model.link_at`).
    # 100,000 identities are about 30,000 people of `outcomes synth`, the largest population the
    # link level was chosen and checked on (docs/linkage.md, A link level that holds as the
    # population grows). None: the link level is `link_at` at any size.
    reference_identities: int | None = 100_000

    @property
    def link_at(self) -> float:
        return float(math.log2(self.link_probability / (1 - self.link_probability)))

    @property
    def review_at(self) -> float:
        return float(math.log2(self.review_probability / (1 - self.review_probability)))

    @property
    def queue_at(self) -> float:
        return float(math.log2(self.queue_probability / (1 - self.queue_probability)))

    def comparison(self, name: str) -> Comparison:
        return next(c for c in self.comparisons if c.name == name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.comparisons)


# The identity block of the extracts (extracts.md): HMAC tokens, Bloom filters of bigrams,
# initials, Soundex token, date of birth, sex, postcode district.
IDENTITY = Spec(
    name="identity",
    comparisons=(
        Comparison(
            "forename",
            "name",
            "forename_token",
            bloom="forename_bloom",
            thresholds=(0.6, 0.85),
            aliases=True,
            tf=True,
            tf_by="date_of_birth",
            initial="forename_initial",
        ),
        Comparison("surname", "name", "surname_token", bloom="surname_bloom", thresholds=(0.6, 0.85), tf=True),
        Comparison("dob", "date", "date_of_birth", within_days=3650, tf=True),
        Comparison("sex", "exact", "sex", missing=("U",)),
        Comparison("postcode", "exact", "postcode_district"),
        Comparison("key", "key", "node", groups=tuple(SOURCES)),
    ),
    passes=(
        Pass("dob+soundex", ("date_of_birth", "surname_soundex_token")),
        # (date of birth with the forename initial alone made blocks that grow with the
        # population: at a million people, tens of people share a birth date and an initial)
        Pass("dob+forename", ("date_of_birth", "forename_token")),
        Pass("dob+initial+postcode", ("date_of_birth", "forename_initial", "postcode_district")),
        Pass(
            "swapped_dob+soundex",
            ("dob_swapped", "surname_soundex_token"),
            ("date_of_birth", "surname_soundex_token"),
        ),
        Pass("names+birth_month", ("forename_token", "surname_token", "birth_year", "birth_month")),
        Pass("names+birth_day", ("forename_token", "surname_token", "birth_month", "birth_day")),
        Pass("soundex+initial+postcode", ("surname_soundex_token", "forename_initial", "postcode_district")),
        Pass("forename+birth_year+postcode", ("forename_token", "birth_year", "postcode_district")),
        # A record with neither a date of birth nor a postcode district (both may be null:
        # extracts.md §2) has no key in any pass above: only its names can find it. Such records
        # only (linkage.records.add_birth_keys) on the left, anyone on the right: names alone as
        # a key for everyone would make blocks that grow with the population.
        Pass(
            "names_if_keyless",
            ("keyless_forename_token", "keyless_surname_token"),
            ("forename_token", "surname_token"),
        ),
    ),
    sessions={
        "dob+soundex": ("forename", "sex", "postcode"),
        "soundex+initial+postcode": ("dob", "sex"),
        "dob+forename": ("surname", "sex", "postcode"),
    },
    prior_rule=("forename", "surname", "dob"),
    prior_recall=0.7,
    corroborate={
        # Everything but the forename agrees: twins look like this (a nickname is a learned alias).
        "forename": "forenames disagree",
        # Names and address agree, birth dates are years apart: a father and son look like this.
        "dob": "dates of birth disagree",
    },
)
