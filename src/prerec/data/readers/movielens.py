"""``movielens``: the GroupLens MovieLens releases, as downloaded.

PATH is the release folder or its ratings file. Recognised layouts:

- ml-100k: ``u.data`` (tab: user, item, rating, unix time) + ``u.item`` (``|``-separated,
  latin-1: id, title, release date, video date, URL, 19 genre flags; genre names from
  ``u.genre`` when present);
- ml-1m / ml-10m: ``ratings.dat`` (``user::movie::rating::time``) + ``movies.dat``
  (``movie::title::Genre|Genre``, latin-1);
- ml-latest / ml-20m / ml-25m: ``ratings.csv`` + ``movies.csv`` (with headers, UTF-8).

Every rating is an interaction (no threshold). Item text: ``"<title>. Genres: <g1>, <g2>"``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from prerec.data.domain import DataReport, Domain, build_domain, parse_timestamps
from prerec.data.readers.spec import DomainSpec, reader
from prerec.data.readers.tables import read_delimited, require_columns
from prerec.errors import PrerecError

GENRES_100K = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
               "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
               "War", "Western")
# ratings file -> (items file, layout)
LAYOUTS = {"u.data": ("u.item", "100k"), "ratings.dat": ("movies.dat", "dat"), "ratings.csv": ("movies.csv", "csv")}


def movie_text(title: pd.Series, genres: pd.Series) -> pd.Series:
    """``"<title>. Genres: a, b"`` (or just the title where a movie has no genre)."""
    title = title.fillna("").astype(str).str.strip()
    genres = genres.fillna("").astype(str).str.strip()
    return pd.Series(np.where(genres != "", title + ". Genres: " + genres, title), index=title.index)


def read_ratings(path: Path, layout: str) -> pd.DataFrame:
    if layout == "100k":
        df = read_delimited(path, sep="\t", header=None, quoting=csv.QUOTE_NONE)
        if df.shape[1] < 4:
            raise PrerecError(f"{path}: expected 4 tab-separated columns (user, item, rating, time), found {df.shape[1]}")
        df = df.iloc[:, :4].set_axis(["userId", "movieId", "rating", "timestamp"], axis=1)
    elif layout == "dat":
        df = read_delimited(path, sep="::", header=None, encoding="latin-1", quoting=csv.QUOTE_NONE)
        if df.shape[1] < 4:
            raise PrerecError(f"{path}: expected 4 '::'-separated columns (user, movie, rating, time), found {df.shape[1]}")
        df = df.iloc[:, :4].set_axis(["userId", "movieId", "rating", "timestamp"], axis=1)
    else:
        df = read_delimited(path, sep=",")
        require_columns(df, ("userId", "movieId", "timestamp"), path)
    return df


def read_movies(path: Path, layout: str) -> pd.DataFrame:
    if layout == "100k":
        df = read_delimited(path, sep="|", header=None, encoding="latin-1", quoting=csv.QUOTE_NONE)
        if df.shape[1] < 2:
            raise PrerecError(f"{path}: expected '|'-separated columns (id, title, ..., genre flags)")
        names = list(GENRES_100K)
        genre_file = path.with_name("u.genre")
        if genre_file.exists():
            g = read_delimited(genre_file, sep="|", header=None, encoding="latin-1", quoting=csv.QUOTE_NONE)
            g = g[g[0].str.strip() != ""]
            names = list(g.sort_values(1, key=lambda s: s.astype(int))[0])
        flags = df.iloc[:, -len(names):] if df.shape[1] >= 5 + len(names) else None
        genres = pd.Series("", index=df.index)
        if flags is not None:
            for k, name in enumerate(names):
                on = flags.iloc[:, k].str.strip() == "1"
                genres = genres.where(~on, np.where(genres == "", name, genres + ", " + name))
        return pd.DataFrame({"item_id": df[0], "text": movie_text(df[1], genres)})
    if layout == "dat":
        df = read_delimited(path, sep="::", header=None, encoding="latin-1", quoting=csv.QUOTE_NONE)
        if df.shape[1] < 3:
            raise PrerecError(f"{path}: expected 3 '::'-separated columns (movie, title, genres)")
        df = df.iloc[:, :3].set_axis(["movieId", "title", "genres"], axis=1)
    else:
        df = read_delimited(path, sep=",")
        require_columns(df, ("movieId", "title", "genres"), path)
    genres = df["genres"].str.replace("(no genres listed)", "", regex=False).str.replace("|", ", ", regex=False)
    return pd.DataFrame({"item_id": df["movieId"], "text": movie_text(df["title"], genres)})


@reader("movielens")
def read_movielens(spec: DomainSpec) -> list[Domain]:
    path = spec.existing_path()
    if path.is_dir():
        ratings = next((path / f for f in LAYOUTS if (path / f).exists()), None)
        if ratings is None:
            raise PrerecError(f"{spec.text}: {path} holds no MovieLens ratings file ({', '.join(LAYOUTS)})")
    else:
        ratings = path
        if ratings.name not in LAYOUTS:
            raise PrerecError(f"{spec.text}: {path.name} is not a MovieLens ratings file ({', '.join(LAYOUTS)})")
    items_name, layout = LAYOUTS[ratings.name]
    df = read_ratings(ratings, layout)
    report = DataReport(rows_read=len(df))
    inter = pd.DataFrame({
        "user_id": df["userId"],
        "item_id": df["movieId"],
        "timestamp": parse_timestamps(df["timestamp"].replace("", None), where=str(ratings)).to_numpy(),
    })
    items_path = ratings.with_name(items_name)
    texts = None
    if items_path.exists():
        texts = read_movies(items_path, layout)
    else:
        report.notes.append(f"no {items_name} beside {ratings.name} (no item text)")
    name = spec.name or (path.name if path.is_dir() else ratings.parent.name) or "movielens"
    return [build_domain(name, inter, texts, source=str(ratings), report=report)]
