"""The label table behind every lookup: one row per (concept, language, surface form)."""

from __future__ import annotations

import pandas as pd

from knowledge.ba import BaTables
from knowledge.esco import EscoTables
from knowledge.text import gender_forms, normalize

LABEL_COLUMNS = ["label_id", "uri", "kind", "lang", "label", "label_type", "norm"]


def _rows_for(frame: pd.DataFrame, kind: str) -> list[tuple[str, str, str, str, str]]:
    rows: list[tuple[str, str, str, str, str]] = []
    has_alt_de = "alt_de" in frame
    for rec in frame.itertuples(index=False):
        for lang in ("en", "de"):
            pref = getattr(rec, f"pref_{lang}")
            if pref:
                rows.append((rec.uri, kind, lang, pref, "pref"))
                if lang == "de" and kind == "occupation":
                    rows.extend((rec.uri, kind, lang, form, "form") for form in gender_forms(pref))
            alts = getattr(rec, f"alt_{lang}") if (lang == "en" or has_alt_de) else []
            for alt in alts:
                rows.append((rec.uri, kind, lang, alt, "alt"))
                if lang == "de" and kind == "occupation":
                    rows.extend((rec.uri, kind, lang, form, "form") for form in gender_forms(alt))
            hidden = getattr(rec, f"hidden_{lang}", []) if hasattr(rec, f"hidden_{lang}") else []
            rows.extend((rec.uri, kind, lang, h, "hidden") for h in hidden)
    return rows


def _ba_rows(ba: BaTables, known: set[str]) -> list[tuple[str, str, str, str, str]]:
    """BA titles and BA occupation names that resolve to exactly one ESCO occupation become German aliases."""
    rows: list[tuple[str, str, str, str, str]] = []
    if len(ba.titles):
        for title, uris in zip(ba.titles.title, ba.titles.esco_uris, strict=True):
            if len(uris) == 1 and uris[0] in known:
                rows.append((uris[0], "occupation", "de", title, "ba_title"))
    if len(ba.occupation_map):
        per_id = ba.occupation_map.groupby("ba_id").agg(uris=("esco_uri", set), label=("ba_label", "first"))
        for rec in per_id.itertuples():
            if len(rec.uris) == 1 and next(iter(rec.uris)) in known:
                uri = next(iter(rec.uris))
                rows.append((uri, "occupation", "de", rec.label, "ba_label"))
                rows.extend((uri, "occupation", "de", form, "form") for form in gender_forms(rec.label))
    return rows


def build_labels(esco: EscoTables, ba: BaTables | None) -> pd.DataFrame:
    """Deduplicated per (uri, lang, normalized form); the most authoritative label type wins."""
    rows = _rows_for(esco.occupations, "occupation") + _rows_for(esco.skills, "skill")
    if ba is not None:
        rows += _ba_rows(ba, set(esco.occupations.uri))
    frame = pd.DataFrame.from_records(rows, columns=["uri", "kind", "lang", "label", "label_type"])
    frame["norm"] = frame.label.map(normalize)
    frame = frame[frame.norm != ""]
    order = {"pref": 0, "alt": 1, "form": 2, "ba_label": 3, "ba_title": 4, "hidden": 5}
    frame = frame.assign(_rank=frame.label_type.map(order)).sort_values(["uri", "lang", "_rank", "label"])
    frame = frame.drop_duplicates(["uri", "lang", "norm"]).drop(columns="_rank").reset_index(drop=True)
    frame.insert(0, "label_id", [f"L{i}" for i in range(len(frame))])
    return frame[LABEL_COLUMNS]


def title_hints(ba: BaTables | None) -> pd.DataFrame:
    """BA titles whose KldB code maps to several ESCO occupations: they narrow, not decide."""
    if ba is None or not len(ba.titles):
        return pd.DataFrame(columns=["norm", "title", "esco_uris"])
    hints = ba.titles[ba.titles.esco_uris.map(len) > 1]
    return pd.DataFrame(
        {"norm": hints.title.map(normalize), "title": hints.title, "esco_uris": hints.esco_uris}
    )
