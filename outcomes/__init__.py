"""The drug treatment outcomes warehouse."""
