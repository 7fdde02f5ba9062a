"""Names and ids that look the same but are written with other characters (NFC/NFD, case).

Used by the CSV checks (`taskbuilder.validation`): column names compared as people read them, the hint for a
column the spec names that the file spells differently, and ids equal once composed (NFC).
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def nfc(text: str) -> str:
    """`text` composed (Unicode NFC)."""
    return unicodedata.normalize("NFC", text)


def fold_name(name: str) -> str:
    """A column name as people compare it: composed (NFC) and case-folded."""
    return nfc(name).casefold()


def forms_in_words(first: str, second: str) -> str:
    """Which of the two is written composed (NFC) and which decomposed (NFD), in words."""
    def form(text: str) -> str:
        return "composed, NFC" if unicodedata.is_normalized("NFC", text) else (
            "decomposed, NFD" if unicodedata.is_normalized("NFD", text) else "mixed")
    return f"{ascii(first)} is {form(first)}; {ascii(second)} is {form(second)}"


def missing_column_hint(name: str, header: list[str], role: str) -> str:
    """What to do about column `name` (the spec's `role`) that `header` lacks: names a look-alike if any."""
    near = [c for c in header if fold_name(c.strip()) == fold_name(name.strip())]
    if near and nfc(near[0].strip()) == nfc(name.strip()):
        return (f"the file's column {ascii(near[0])} looks the same but is written with different Unicode "
                f"characters than the spec's {ascii(name)} ({forms_in_words(name, near[0])}): retype the name in "
                "the job spec or the file, or save both with composed characters (NFC)")
    if near and (nfc(near[0]) != near[0] or nfc(name) != name):
        return (f"the file has {ascii(near[0])}: names are exact, in case and in how accents are written "
                f"({forms_in_words(name, near[0])})")
    if near:
        return f"the file has {near[0]!r}: names are exact"
    return f"add the column, or change {role} in the job spec; the file has: {', '.join(header)}"


def look_alike_ids(ids: pa.ChunkedArray, skip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Records whose id differs as written from an earlier one but is equal once composed (NFC).

    Returns `(rows, first_of)`: 0-based rows not in `skip` (a boolean mask per row) whose id looks like an earlier
    record's, and per row the row where its composed id is first used."""
    if pc.all(pc.string_is_ascii(ids)).as_py() is not False:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    composed = pc.dictionary_encode(pc.utf8_normalize(ids, form="NFC").combine_chunks())
    codes = composed.indices.to_numpy(zero_copy_only=False)
    _, first_use = np.unique(codes, return_index=True)
    first_of = first_use[np.searchsorted(np.unique(codes), codes)]
    return np.flatnonzero((first_of != np.arange(len(codes))) & ~skip), first_of
