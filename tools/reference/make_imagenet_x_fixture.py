#!/usr/bin/env python3
"""ImageNet-X / ImageNet validation fixture for crates/atlas-data (run from the repository root).

    pip install pandas tqdm imagenet-x==0.0.7
    python3 tools/reference/make_imagenet_x_fixture.py

Writes crates/atlas-data/tests/fixtures/imagenet_x/:
- imagenet_x_val_top_factor.jsonl, imagenet_x_val_multi_factor.jsonl, prototypical_paths.csv:
  SYNTHETIC lines in the exact schema of the files shipped in the imagenet-x 0.0.7 wheel
  (imagenet_x/annotations/: same keys in the same order, compact JSON, 0/1 ints, a null
  `justification` as in 11 real lines). The real files are CC BY-NC 4.0, which does not fit this
  MIT/Apache repository, so no real line is copied; the script checks the schema against the
  installed package's files instead.
- LOC_val_solution.csv: synthetic rows in Kaggle's format (ImageId,PredictionString with boxes).
- images.json: the validation images the Rust tests create (file name, WNID, class index).
- expected.json: what the imagenet-x package itself makes of them, for which_factor in
  {top, multi} and filter_prototypes in {True, False}: `imagenet_x.utils.load_annotations`
  (its annotation folder pointed at the fixture) followed by `ImageNetXImageFolder`'s filter
  (`path.split("/")[-1] in annotations.index`), i.e. the annotated images the toolkit evaluates,
  each with its class and 16 factor flags; plus the toolkit's per-factor image counts
  (`groups[factors].sum()` of `aggregate._compute_factor_accuracies`).

Coverage: one image without annotation (skipped), one annotation without image, one prototype
that is annotated and present, one prototype that is neither, one image with no factor flagged in
the top file, two images of the same class, classes 0 and 999.
"""
import json
import os
import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path

import imagenet_x.utils as ixu
import pandas as pd
from imagenet_x import FACTORS

OUT = Path("crates/atlas-data/tests/fixtures/imagenet_x")
WNIDS = Path("data/imagenet/wnids.txt").read_text().split()
REAL = Path(ixu.__file__).parent / "annotations"

# Key order of the real files (checked below against the installed package).
KEYS = ["file_name", "class", "multiple_objects", "background", "color", "brighter", "darker",
        "style", "larger", "smaller", "object_blocking", "person_blocking", "partial_view",
        "pattern", "pose", "shape", "subcategory", "texture", "justification", "one_word"]


def name(i):
    return f"ILSVRC2012_val_{i:08d}.JPEG"


# (image number, class index, top factor or None, extra multi factors)
ANNOTATED = [
    (1, 0, "pose", ["background"]),
    (2, 0, "background", []),
    (3, 292, "color", ["style", "pose"]),          # prototype
    (4, 718, "pose", ["color"]),
    (5, 762, None, []),                             # no factor flagged
    (6, 999, "texture", ["pattern", "shape", "partial_view"]),
    (7, 1, "smaller", ["multiple_objects"]),
    (8, 500, "person_blocking", ["object_blocking"]),
    (9, 42, "brighter", ["darker", "larger"]),
    (11, 7, "subcategory", []),                     # annotation without an image
]
IMAGES = [(i, c) for i, c, _, _ in ANNOTATED if i != 11] + [(10, 123)]  # 10: no annotation
PROTOTYPES = [3, 12]
SOLUTION_EXTRA = [(13, 55)]  # a labels row without an image


def line(i, cls, factors, justification):
    row = {"file_name": name(i), "class": cls}
    for k in KEYS[2:-2]:
        row[k] = int(k in factors)
    row["justification"] = justification
    row["one_word"] = f"synthetic {i}"
    assert list(row) == KEYS
    return json.dumps(row, separators=(",", ":"))


def check_schema():
    for which in ("top", "multi"):
        with open(REAL / f"imagenet_x_val_{which}_factor.jsonl") as f:
            first = json.loads(f.readline())
        assert list(first) == KEYS, (which, list(first))
    assert set(KEYS[2:-2]) == set(FACTORS)
    assert pd.read_csv(REAL / "prototypical_paths.csv").columns.tolist() == ["file_name"]
    labels = pd.read_csv(REAL / "imagenet_labels.txt", names=["wnid", "label"])
    assert labels.wnid.tolist() == WNIDS, "imagenet_labels.txt order differs from wnids.txt"


def main():
    check_schema()
    OUT.mkdir(parents=True, exist_ok=True)
    top, multi = [], []
    for i, cls, t, extra in ANNOTATED:
        just = None if i == 9 else f"synthetic annotation {i}"
        top.append(line(i, cls, [t] if t else [], just))
        multi.append(line(i, cls, ([t] if t else []) + extra, just))
    (OUT / "imagenet_x_val_top_factor.jsonl").write_text("\n".join(top) + "\n")
    (OUT / "imagenet_x_val_multi_factor.jsonl").write_text("\n".join(multi) + "\n")
    (OUT / "prototypical_paths.csv").write_text(
        "file_name\n" + "".join(name(i) + "\n" for i in PROTOTYPES))
    rows = ["ImageId,PredictionString"]
    for i, cls in IMAGES + SOLUTION_EXTRA:
        w = WNIDS[cls]
        rows.append(f"{name(i)[:-5]},{w} {i} {2 * i} {100 + i} {120 + i} {w} 1 2 30 40 ")
    (OUT / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
    images = [{"file_name": name(i), "wnid": WNIDS[c], "class": c} for i, c in IMAGES]
    (OUT / "images.json").write_text(json.dumps(images, indent=1) + "\n")

    # The toolkit on the fixture: its own load_annotations, its annotation folder redirected.
    expected = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for f in ("imagenet_x_val_top_factor.jsonl", "imagenet_x_val_multi_factor.jsonl",
                  "prototypical_paths.csv"):
            shutil.copy(OUT / f, tmp / f)
        shutil.copy(REAL / "imagenet_1k_classes_to_100_metaclasses.csv", tmp)
        ixu.get_annotation_path = lambda: tmp
        present = {im["file_name"] for im in images}
        for which in ("top", "multi"):
            for filt in (True, False):
                ann = ixu.load_annotations(which_factor=which, partition="val",
                                           filter_prototypes=filt).set_index("file_name")
                # ImageNetXImageFolder: keep the samples whose file name is annotated.
                kept = sorted(f for f in present if f in ann.index)
                sub = ann.loc[kept]
                expected[f"{which}/filter_prototypes={filt}"] = {
                    "images": [
                        {"file_name": f, "class": int(sub.loc[f, "class"]),
                         "factors": [k for k in FACTORS if int(sub.loc[f, k]) == 1]}
                        for f in kept
                    ],
                    "factor_counts": {k: int(sub[k].sum()) for k in FACTORS},
                }
    expected["unannotated_images"] = sorted(present - {name(i) for i, *_ in ANNOTATED})
    expected["annotations_without_image"] = sorted(
        {name(i) for i, *_ in ANNOTATED} - present)
    expected["source"] = f"imagenet-x {version('imagenet-x')} via tools/reference/{os.path.basename(__file__)}"
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print("wrote", sorted(p.name for p in OUT.iterdir()))


if __name__ == "__main__":
    main()
