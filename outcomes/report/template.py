"""The report's HTML template and style sheet, kept in Python so that they ship with the package.

Rendered by jinja2 with autoescape on: every value is escaped unless it is markup built (and
escaped) by outcomes.report.charts. Nothing refers to a resource outside the file.
"""

CSS = """
:root { --ink: #1b1b1b; --muted: #5a5a5a; --rule: #d9d9d9; --band: #f4f6f8; --accent: #0b5cab; }
* { box-sizing: border-box; }
html { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); background: #fff; line-height: 1.45; }
body { margin: 0 auto; max-width: 1200px; padding: 0 1.25rem 3rem; }
a { color: var(--accent); }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 1rem; top: 1rem; background: #fff; padding: .3rem .6rem; }
header { border-bottom: 3px solid var(--ink); padding: 1.5rem 0 1rem; }
h1 { font-size: 1.9rem; margin: 0 0 .5rem; }
h2 { font-size: 1.4rem; margin: 2.2rem 0 .6rem; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
.tablename { font: .8rem ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color: var(--muted);
             font-weight: normal; margin-left: .5rem; }
.banner { background: #fff4d6; border-left: 5px solid #c98a00; padding: .5rem .8rem; margin: .6rem 0; }
dl.meta { display: flex; flex-wrap: wrap; gap: .4rem 2rem; margin: .8rem 0 0; }
dl.meta div { min-width: 10rem; }
dl.meta dt { font-size: .75rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
dl.meta dd { margin: 0; font-weight: 600; }
nav ol { columns: 2; padding-left: 1.2rem; }
section.block { border-top: 1px solid var(--rule); }
section p { max-width: 52rem; }
.caveat { background: #fff1ec; border-left: 5px solid #c0461b; padding: .6rem .9rem; margin: .8rem 0;
          max-width: 52rem; }
.compare { background: #eef5fb; border-left: 5px solid var(--accent); padding: .5rem .9rem .7rem;
           margin: 1rem 0; }
.compare h3 { margin-top: .3rem; }
.missing, .nochart { color: var(--muted); font-style: italic; }
figure { margin: 1rem 0 1.4rem; }
.panels { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; }
.panel h3 { font-size: .95rem; margin: .4rem 0 0; }
svg.chart { max-width: 100%; height: auto; display: block; }
figcaption { font-size: .85rem; color: var(--muted); max-width: 52rem; }
.table-wrap { overflow-x: auto; margin: .6rem 0 .2rem; }
table { border-collapse: collapse; font-size: .83rem; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; font-size: .92rem; }
th, td { border-bottom: 1px solid var(--rule); padding: .28rem .55rem; vertical-align: top; text-align: left; }
thead th { background: var(--band); border-bottom: 2px solid #aaa; font-weight: 600; vertical-align: bottom; }
tbody th { font-weight: 500; }
tbody tr:nth-child(even) { background: #fafafa; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.suppressed, .na { color: var(--muted); }
.flag.provisional { font-weight: 700; color: #8a5a00; }
.code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .8rem; }
.status-rejected { color: #b3261e; font-weight: 600; }
ul.notes { font-size: .8rem; color: var(--muted); margin: .2rem 0 1rem; padding-left: 1.1rem; }
details { margin: .6rem 0 1rem; }
summary { cursor: pointer; font-weight: 600; font-size: .92rem; }
footer { border-top: 1px solid var(--rule); margin-top: 3rem; padding-top: .8rem; font-size: .8rem;
         color: var(--muted); }
@media print { nav { display: none; } details > * { display: block; } section { break-inside: avoid-page; } }
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}{% if as_of %}, as of {{ as_of }}{% endif %}</title>
<style>{{ css }}</style>
</head>
<body>
<a class="skip" href="#main">Skip to the report</a>
{%- macro table(t) %}
{%- if t.collapsed %}
<details><summary>{{ t.caption }} ({{ "{:,}".format(t.rows|length) }} {{ "row" if t.rows|length == 1 else "rows" }})
</summary>
{%- endif %}
{%- if t.headers %}
<div class="table-wrap">
<table id="{{ t.id }}" class="{{ t.kind }}">
<caption>{{ t.caption }}</caption>
<thead><tr>
{%- for h in t.headers %}<th scope="col"{% if h.cls %} class="{{ h.cls }}"{% endif %}>{{ h.text }}</th>{% endfor -%}
</tr></thead>
<tbody>
{%- for row in t.rows %}
<tr>
{%- for c in row %}
{%- if c.header %}<th scope="row"{% if c.cls %} class="{{ c.cls }}"{% endif %}>{{ c.text }}</th>
{%- else %}<td{% if c.cls %} class="{{ c.cls }}"{% endif %}{% if c.title %} title="{{ c.title }}"{% endif %}>
{{- c.text }}</td>
{%- endif %}
{%- endfor -%}
</tr>
{%- else %}
<tr><td colspan="{{ t.headers|length }}" class="na">{{ t.empty }}</td></tr>
{%- endfor %}
</tbody>
</table>
</div>
{%- else %}
<p class="missing">{{ t.caption }}: {{ t.empty }}</p>
{%- endif %}
{%- if t.has_suppressed or t.has_provisional or t.notes %}
<ul class="notes">
{%- if t.has_suppressed %}
<li>[c] suppressed to protect confidentiality: a count from 1 to 4, or a cell suppressed with one so that it
cannot be worked out from totals (and any rate built on it).</li>
{%- endif %}
{%- if t.has_provisional %}
<li>P provisional: the follow-up window is not closed at the as-of date, so the figure can change.</li>
{%- endif %}
{%- for n in t.notes %}<li>{{ n }}</li>{% endfor %}
</ul>
{%- endif %}
{%- if t.collapsed %}</details>{% endif %}
{%- endmacro %}
<header>
<h1>{{ title }}</h1>
{%- if synthetic %}
<p class="banner"><strong>Synthetic data.</strong> These figures describe a synthetic population generated to test
the warehouse. They are not official statistics and say nothing about real people or places.</p>
{%- endif %}
{%- if mixed_as_of %}
<p class="banner"><strong>Tables built as of different dates</strong> ({{ mixed_as_of }}): the published tables come
from more than one build. Run <code>outcomes build</code> and <code>outcomes publish</code> again before release.</p>
{%- endif %}
<dl class="meta">
<div><dt>Figures as of</dt><dd>{{ as_of or "not built yet" }}</dd></div>
<div><dt>Report generated</dt><dd>{{ generated }}</dd></div>
<div><dt>Software</dt><dd>outcomes-warehouse {{ version }}</dd></div>
<div><dt>Warehouse</dt><dd>{{ dialect }}</dd></div>
{%- if linkage_run %}<div><dt>Linkage</dt><dd>{{ linkage_run }}</dd></div>{% endif %}
{%- if latest_extracts %}<div><dt>Latest applied extracts</dt><dd>{{ latest_extracts }}</dd></div>{% endif %}
</dl>
</header>
<nav aria-label="Contents">
<h2>Contents</h2>
<ol>
<li><a href="#reading">Reading this report</a></li>
{%- for s in sections %}
<li><a href="#{{ s.id }}">{{ s.title }}</a></li>
{%- endfor %}
</ol>
</nav>
<main id="main">
<section id="reading" class="block" aria-labelledby="reading-h">
<h2 id="reading-h">Reading this report</h2>
<ul>
<li>Every outcome figure comes from the disclosure-controlled <code>published</code> tables of the warehouse,
built as of {{ as_of or "the as-of date" }}: only data delivered by then counts.</li>
<li>Periods are 12 months long. Rolling periods end at each month end; financial years run April to March.</li>
<li><strong>[c]</strong> marks a suppressed cell: a count from 1 to 4, or a cell suppressed with one so that it
cannot be worked out by subtraction. Rates built on a suppressed count are suppressed too. Figures added up here
(over substance groups, or pooled rates) are shown only when none of the cells they need is suppressed.</li>
<li><strong>P</strong> marks a provisional figure: its follow-up window had not closed at the as-of date. In
charts, provisional points are hollow and joined by faint lines.</li>
<li><strong>–</strong> marks a rate with no denominator (nothing to divide by).</li>
<li>A group with no row in a table had no one in it.</li>
</ul>
</section>
{%- for s in sections %}
<section id="{{ s.id }}" class="block" aria-labelledby="{{ s.id }}-h">
<h2 id="{{ s.id }}-h">{{ s.title }}<span class="tablename">{{ s.table_name }}</span></h2>
{%- for p in s.definition %}
<p>{{ p }}</p>
{%- endfor %}
{%- if s.caveat %}
<aside class="caveat" role="note"><strong>Not a causal effect.</strong> {{ s.caveat }}</aside>
{%- endif %}
{%- if s.missing %}
<p class="missing">{{ s.missing }}</p>
{%- endif %}
{%- for c in s.charts %}
<figure>
{%- if c.drawn %}
<div class="panels">
{%- for name, svg in c.panels %}
<div class="panel">{% if name %}<h3>{{ name }}</h3>{% endif %}
{%- if svg %}{{ svg }}{% else %}<p class="nochart">Nothing published to chart.</p>{% endif %}</div>
{%- endfor %}
</div>
{%- else %}
<p class="nochart">{{ c.empty }}</p>
{%- endif %}
<figcaption><strong>{{ c.title }}.</strong> {{ c.caption }}</figcaption>
</figure>
{%- endfor %}
{%- if s.comparisons %}
<aside class="compare" aria-labelledby="{{ s.id }}-compare">
<h3 id="{{ s.id }}-compare">Beside published figures</h3>
<div class="table-wrap">
<table class="comparison">
<caption>Figures from the drug strategy papers (England) set beside
{{ "synthetic figures from this warehouse" if synthetic else "figures from this warehouse" }}</caption>
<thead><tr><th scope="col">Measure</th><th scope="col">Published</th><th scope="col">Year</th>
<th scope="col">{{ "Ours (synthetic)" if synthetic else "Ours" }}</th><th scope="col">Our period</th>
<th scope="col">Note</th></tr></thead>
<tbody>
{%- for c in s.comparisons %}
<tr><th scope="row">{{ c.measure }}</th><td>{{ c.published }}</td><td>{{ c.published_when }}</td>
<td>{{ c.ours }}</td><td>{{ c.ours_when }}</td><td>{{ c.note }}</td></tr>
{%- endfor %}
</tbody>
</table>
</div>
</aside>
{%- endif %}
{%- for t in s.tables %}
{{ table(t) }}
{%- endfor %}
</section>
{%- endfor %}
</main>
<footer>
<p>{{ title }}. Outcome definitions: shared/spec/outcomes.md and docs/marts.md. Figures as of {{ as_of or "–" }};
generated {{ generated }}. This file is self-contained: it loads nothing from elsewhere.</p>
</footer>
</body>
</html>
"""
