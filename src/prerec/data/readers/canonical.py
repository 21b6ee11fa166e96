"""``canonical``: ``interactions.<ext>`` (user_id, item_id[, timestamp]) + ``items.<ext>`` (item_id, text).

PATH is the folder holding both, or the interactions file itself (the items file is then looked
for beside it). Parquet, CSV, TSV and JSON lines are accepted. Timestamps may be unix seconds
(or milliseconds) or dates; a file's row order is kept for ties and for logs without time.
"""

from __future__ import annotations

from prerec.data.domain import DataReport, Domain, build_domain, parse_timestamps
from prerec.data.readers.spec import DomainSpec, reader
from prerec.data.readers.tables import TABLE_SUFFIXES, find_table, read_table
from prerec.errors import PrerecError

ID_DTYPES = {"user_id": str, "item_id": str}


@reader("canonical")
def read_canonical(spec: DomainSpec) -> list[Domain]:
    path = spec.existing_path()
    if path.is_dir():
        inter_path = find_table(path, "interactions")
        items_path = find_table(path, "items")
        if inter_path is None:
            raise PrerecError(
                f"{spec.text}: {path} holds no interactions file "
                f"(expected interactions{{{','.join(TABLE_SUFFIXES)}}})"
            )
    else:
        inter_path, items_path = path, find_table(path.parent, "items")
    inter = read_table(inter_path, required=("user_id", "item_id"), dtype=ID_DTYPES)
    report = DataReport(rows_read=len(inter))
    if "timestamp" in inter.columns:
        inter = inter.assign(timestamp=parse_timestamps(inter["timestamp"], where=str(inter_path)))
    texts = None
    if items_path is not None:
        texts = read_table(items_path, required=("item_id", "text"), dtype={"item_id": str, "text": str})
    else:
        report.notes.append(f"no items file beside {inter_path} (no item text)")
    name = spec.name or path.stem
    return [build_domain(name, inter, texts, source=str(inter_path), report=report)]
