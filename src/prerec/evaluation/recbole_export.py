"""A domain's split as RecBole atomic files (pre-split sequential benchmark files).

RecBole's ``benchmark_filename: [train, valid, test]`` loads ``<name>.train.inter``,
``<name>.valid.inter`` and ``<name>.test.inter``. Each row is one instance of docs/method.md, "Evaluation"
for the users of that part: ``user_id``, the last <= ``max_len`` items of the history
(``item_id_list``, space separated, oldest first) and the next item (``item_id``). The
``<name>.item`` file lists the whole catalog, so RecBole's item vocabulary is the domain's
catalog (every item can be ranked), and ``<name>.text`` keeps each item's text (UniSRec style,
not read by SASRec). Test rows are exactly the instances ``prerec evaluate`` ranks, in the
same order.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from prerec.constants import SPLIT_SEED
from prerec.data.domain import Domain, Sequences
from prerec.data.instances import make_instances
from prerec.data.split import Split, split_users
from prerec.errors import PrerecError

PARTS = ("train", "valid", "test")
_BAD = re.compile(r"\s")


def _check_ids(values: np.ndarray, what: str, domain: str) -> None:
    bad = [v for v in values if _BAD.search(str(v))]
    if bad:
        raise PrerecError(f"domain {domain!r}: {len(bad)} {what} ids contain whitespace (e.g. {bad[0]!r}); "
                          "RecBole's token_seq fields are space separated, so they cannot be exported")


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def inter_lines(domain: Domain, seqs: Sequences, max_len: int) -> list[str]:
    """One ``user<TAB>item item ...<TAB>next`` line per instance of ``seqs``."""
    inst = make_instances(seqs)
    hist, lengths = inst.histories(max_len)
    ids = domain.item_ids
    users = inst.users
    targets = inst.targets
    out = []
    for k in range(len(inst)):
        h = " ".join(str(ids[j]) for j in hist[k, : lengths[k]])
        out.append(f"{users[k]}\t{h}\t{ids[targets[k]]}")
    return out


def export_recbole(domain: Domain, out_dir: str | Path, *, seed: int = SPLIT_SEED, max_len: int = 50,
                   split: Split | None = None, name: str | None = None) -> dict[str, int]:
    """Write ``out_dir/<name>/<name>.{train,valid,test}.inter``, ``.item`` and ``.text``; returns
    the number of rows per part."""
    name = name or domain.name
    if _BAD.search(name) or "/" in name:
        raise PrerecError(f"domain name {name!r}: RecBole dataset names cannot contain spaces or '/' "
                          "(rename it with NAME=FORMAT:PATH)")
    _check_ids(domain.item_ids, "item", domain.name)
    seqs = domain.sequences
    _check_ids(seqs.users, "user", domain.name)
    split = split or split_users(seqs, seed)
    folder = Path(out_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    for part in PARTS:
        lines = inter_lines(domain, split.part(part), max_len)
        counts[part] = len(lines)
        _write(folder / f"{name}.{part}.inter", header + "".join(line + "\n" for line in lines))
    _write(folder / f"{name}.item", "item_id:token\n" + "".join(f"{i}\n" for i in domain.item_ids))
    texts = (" ".join(str(t).split()) for t in domain.texts.tolist())
    _write(folder / f"{name}.text", "item_id:token\ttext:token_seq\n"
           + "".join(f"{i}\t{t}\n" for i, t in zip(domain.item_ids, texts)))
    return counts
