#!/usr/bin/env python3
"""Reference tables of the LMM stage (`crates/atlas-lmm`), computed with NumPy.

Writes `crates/atlas-lmm/tests/fixtures/lmm_stage.json`: a made-up input (class names, per item
a label, a unit embedding whose components are the item's cosines against a one-hot head, a
flag for items that failed to embed, the cached question / answer / error as the pipeline's
`lmm-answers` artifact holds them) and the tables the stage must compute from it without
bootstrap: per item the surrogate's top-1 / top-2, the verdict and whether CLIP was right; per
category the counts and accuracies; per split the LMM and CLIP accuracies, the gain, CLIP's
worst `worst_k` categories (lowest CLIP accuracy, ties by class index) and the gain there.

The answer scoring is ImageNet-D's `compute_accuracy.py` as re-implemented (and cited) in
`make_imagenet_d_scoring.py`, imported from beside this file.

Run: python3 tools/reference/make_lmm_stage_reference.py
"""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_imagenet_d_scoring import category_name, question, verdict  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates/atlas-lmm/tests/fixtures/lmm_stage.json"
SEED = 15
WORST_K = 3

CLASSES = ["tv", "T-shirt", "coffee/french_press", "pen", "can_opener", "dog", "cat", "ladle"]
SYN = {"tv": "a television", "t shirt": "a shirt", "coffee or french press": "a coffee maker",
       "ladle": "a big spoon"}


def answer_text(rng, gt, dis):
    """A made-up free-text answer naming the ground truth, the distractor, both or neither."""
    k = rng.integers(0, 6)
    if k == 0:
        return f"The main object is {gt}."
    if k == 1:
        return f"It is {dis}."
    if k == 2:
        return f"Both {gt} and {dis} appear."
    if k == 3:
        return "I cannot tell."
    if k == 4:
        return SYN.get(gt, gt).upper()
    return SYN.get(dis, dis)


def top2(scores):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return order[0], order[1]


def main():
    rng = np.random.default_rng(SEED)
    names = [category_name(c) for c in CLASSES]
    splits = []
    for split, n in [("background", 90), ("texture", 70)]:
        c = len(CLASSES)
        labels = rng.integers(0, c, size=n)
        items = []
        for i in range(n):
            label = int(labels[i])
            # Cosines: a noisy vote for the label, more often wrong on the texture split.
            v = rng.normal(0.0, 1.0, size=c)
            v[label] += 1.2 if split == "background" else 0.4
            v = v / np.linalg.norm(v)
            failed_embed = bool(rng.random() < 0.05)
            unlabelled = bool(rng.random() < 0.03)
            item = {"id": f"{split}/{i:03d}", "label": -1 if unlabelled else label,
                    "embedding": [float(x) for x in v.astype(np.float32)],
                    "embedded": not failed_embed}
            if unlabelled or failed_embed:
                item.update(distractor=-1, question="", answer=None, error=None)
            else:
                t1, t2 = top2([float(x) for x in np.asarray(item["embedding"], dtype=np.float32)])
                dis = t1 if t1 != label else t2
                q = question(names[label], names[dis])
                if rng.random() < 0.08:
                    item.update(distractor=dis, question=q, answer=None,
                                error="HTTP 500 from http://127.0.0.1/v1/chat/completions")
                else:
                    item.update(distractor=dis, question=q,
                                answer=answer_text(rng, names[label], names[dis]), error=None)
            items.append(item)
        splits.append({"dataset": split, "items": items})

    expected = {"items": [], "categories": [], "summary": []}
    for sp in splits:
        scored = []
        for it in sp["items"]:
            if it["label"] < 0:
                continue
            label = it["label"]
            if it["embedded"]:
                t1, t2 = top2([float(x) for x in np.asarray(it["embedding"], dtype=np.float32)])
            else:
                t1, t2 = None, None
            v = None
            if it["answer"] is not None and it["distractor"] >= 0:
                v = verdict(names[label], names[it["distractor"]], it["answer"])
                v = {"TODO": "NEITHER"}.get(v, v)
            expected["items"].append({
                "dataset": sp["dataset"], "item_id": it["id"], "label": label,
                "category": names[label], "top1": t1, "top2": t2,
                "distractor": names[it["distractor"]] if it["distractor"] >= 0 else None,
                "verdict": v, "clip_correct": None if t1 is None else t1 == label,
            })
            scored.append((label, t1, v))
        cats = []
        for c in range(len(CLASSES)):
            of = [s for s in scored if s[0] == c]
            if not of:
                continue
            clip_n = sum(1 for s in of if s[1] is not None)
            clip_ok = sum(1 for s in of if s[1] == c)
            tv = [s[2] for s in of if s[2] is not None]
            t, f = tv.count("TRUE"), tv.count("FALSE")
            lmm = t / (t + f) if t + f else None
            clip = clip_ok / clip_n if clip_n else None
            cats.append({"dataset": sp["dataset"], "label": c, "category": names[c],
                         "n": len(of), "n_clip": clip_n, "clip_accuracy": clip,
                         "lmm_true": t, "lmm_false": f, "lmm_double": tv.count("DOUBLE"),
                         "lmm_neither": tv.count("NEITHER"), "failed": len(of) - len(tv),
                         "lmm_accuracy": lmm,
                         "gain": None if lmm is None or clip is None else lmm - clip})
        ranked = sorted([x for x in cats if x["clip_accuracy"] is not None],
                        key=lambda x: (x["clip_accuracy"], x["label"]))
        for r, x in enumerate(ranked):
            x["clip_rank"] = r + 1
            x["worst"] = r < WORST_K
        for x in cats:
            x.setdefault("clip_rank", None)
            x.setdefault("worst", False)
        expected["categories"].extend(cats)
        worst = [x["label"] for x in ranked[:WORST_K]]

        def acc(rows):
            tv = [s[2] for s in rows if s[2] is not None]
            t, f = tv.count("TRUE"), tv.count("FALSE")
            lmm = t / (t + f) if t + f else None
            n = sum(1 for s in rows if s[1] is not None)
            clip = sum(1 for s in rows if s[1] == s[0]) / n if n else None
            return lmm, clip, (None if lmm is None or clip is None else lmm - clip)

        lmm, clip, gain = acc(scored)
        wrows = [s for s in scored if s[0] in worst]
        wl, wc, wg = acc(wrows)
        tv = [s[2] for s in scored if s[2] is not None]
        expected["summary"].append({
            "dataset": sp["dataset"], "n": len(scored),
            "n_clip": sum(1 for s in scored if s[1] is not None),
            "lmm_true": tv.count("TRUE"), "lmm_false": tv.count("FALSE"),
            "lmm_double": tv.count("DOUBLE"), "lmm_neither": tv.count("NEITHER"),
            "failed": len(scored) - len(tv), "lmm_accuracy": lmm, "clip_accuracy": clip,
            "gain": gain, "worst_categories": ", ".join(x["category"] for x in ranked[:WORST_K]),
            "worst_n": len(wrows), "worst_lmm_accuracy": wl, "worst_clip_accuracy": wc,
            "worst_gain": wg,
        })
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"generator": "tools/reference/make_lmm_stage_reference.py",
                               "worst_k": WORST_K, "classes": CLASSES, "splits": splits,
                               "expected": expected}, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
