"""The data layer: domains (interaction logs + item catalogs), readers, splits and instances."""

from prerec.data.domain import DataReport, Domain, Sequences
from prerec.data.instances import Instances, make_instances
from prerec.data.readers import READERS, DomainSpec, load_domains, parse_spec
from prerec.data.split import Split, split_users

__all__ = [
    "READERS",
    "DataReport",
    "Domain",
    "DomainSpec",
    "Instances",
    "Sequences",
    "Split",
    "load_domains",
    "make_instances",
    "parse_spec",
    "split_users",
]
