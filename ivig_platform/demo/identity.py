"""Fake direct identifiers: medical record numbers, names, national ID numbers, phones.

They look like what Spanish hospital extracts carry, so the privacy checks downstream are
exercised on realistic strings.  All are invented; DNI check letters are computed the real way
so a validator would accept them.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ivig_platform.demo import vocab


def patient_ids(style: str, n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct medical record numbers in a site's ``style``.

    ``digits7``/``digits8`` are bare numbers (never with leading zeros, so they survive
    spreadsheets); anything else is a prefix followed by six digits.
    """
    if style == "digits7":
        nums = rng.choice(9_000_000, size=n, replace=False) + 1_000_000
        return [str(x) for x in nums.tolist()]
    if style == "digits8":
        nums = rng.choice(90_000_000, size=n, replace=False) + 10_000_000
        return [str(x) for x in nums.tolist()]
    nums = rng.choice(999_000, size=n, replace=False) + 1_000
    return [f"{style}{x:06d}" for x in nums.tolist()]


def person_columns(sex: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    """Names, surnames, DNI and phone for people of the given sexes ('F'/'M'), one row each."""
    n = sex.size
    female = np.asarray(FIRST_F)[rng.integers(0, len(FIRST_F), n)]
    male = np.asarray(FIRST_M)[rng.integers(0, len(FIRST_M), n)]
    first = np.where(sex == "F", female, male)
    sur = np.asarray(vocab.SURNAMES)
    s1 = sur[rng.integers(0, sur.size, n)]
    s2 = sur[rng.integers(0, sur.size, n)]
    dni_num = rng.integers(10_000_000, 99_999_999, n)
    letters = np.asarray(list(vocab.DNI_LETTERS))[dni_num % 23]
    phone_num = rng.integers(600_000_000, 799_999_999, n)
    phone_style = rng.integers(0, 3, n)
    df = pl.DataFrame(
        {
            "first_name": first,
            "_s1": s1,
            "_s2": s2,
            "_dni": dni_num,
            "_letter": letters,
            "_phone": phone_num.astype(np.int64),
            "_pstyle": phone_style,
        }
    )
    p = pl.col("_phone").cast(pl.String)
    return df.select(
        "first_name",
        surnames=pl.concat_str("_s1", pl.lit(" "), "_s2"),
        national_id=pl.concat_str(pl.col("_dni").cast(pl.String), "_letter"),
        phone=pl.when(pl.col("_pstyle") == 0)
        .then(p)
        .when(pl.col("_pstyle") == 1)
        .then(
            pl.concat_str(
                p.str.slice(0, 3),
                pl.lit(" "),
                p.str.slice(3, 2),
                pl.lit(" "),
                p.str.slice(5, 2),
                pl.lit(" "),
                p.str.slice(7, 2),
            )
        )
        .otherwise(
            pl.concat_str(
                pl.lit("+34 "),
                p.str.slice(0, 3),
                pl.lit(" "),
                p.str.slice(3, 3),
                pl.lit(" "),
                p.str.slice(6, 3),
            )
        ),
    )


FIRST_F = vocab.FIRST_NAMES_F
FIRST_M = vocab.FIRST_NAMES_M
