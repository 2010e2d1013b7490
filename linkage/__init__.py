"""Record linkage of pseudonymised identities into the person spine (recordlinkage)."""
