"""PostgreSQL access tiers (interfaces.md): each schema has its own reader role, and the roles of
people are granted only the schemas of their row:

    linkage team     events, linkage, published
    data engineers   events, quarantine, published
    evaluation       marts, published
    researchers      research, published
    everyone         published
"""

from __future__ import annotations

SCHEMAS = ("events", "quarantine", "linkage", "marts", "research", "published")
READS = {
    "outcomes_linkage_team": ("events", "linkage", "published"),
    "outcomes_data_engineer": ("events", "quarantine", "published"),
    "outcomes_evaluation": ("marts", "published"),
    "outcomes_researcher": ("research", "published"),
    "outcomes_public": ("published",),
}


def schema_role(schema: str) -> str:
    return f"outcomes_{schema}"


def _create_role(name: str) -> str:
    # Roles are cluster-wide and several databases may race to create them: tolerate the loser.
    return (
        f"do $$ begin create role {name} nologin; exception when duplicate_object or unique_violation then null; end $$"
    )


def grant_statements(existing_schemas: set[str]) -> list[str]:
    statements = []
    for schema in SCHEMAS:
        statements.append(_create_role(schema_role(schema)))
    for person, schemas in READS.items():
        statements.append(_create_role(person))
        statements += [f"grant {schema_role(s)} to {person}" for s in schemas]
    for schema in SCHEMAS:
        if schema not in existing_schemas:
            continue
        role = schema_role(schema)
        statements += [
            f"revoke all on schema {schema} from public",
            f"grant usage on schema {schema} to {role}",
            f"grant select on all tables in schema {schema} to {role}",
            f"alter default privileges in schema {schema} grant select on tables to {role}",
        ]
    return statements


def apply_grants(backend) -> None:
    """Create the roles if needed and grant each schema to its reader role (PostgreSQL only)."""
    if backend.dialect != "postgresql":
        return
    with backend.transaction() as s:
        existing = {
            r["schema_name"] for r in s.fetch("select schema_name from information_schema.schemata").to_pylist()
        }
        s.execute("select pg_advisory_xact_lock(7405)")  # one grant pass at a time per database
        for statement in grant_statements(existing):
            s.execute(statement)
