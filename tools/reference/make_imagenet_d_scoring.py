#!/usr/bin/env python3
"""ImageNet-D's LMM question and answer scoring, re-implemented in plain Python (no pandas), and
a fixture of made-up answers for crates/atlas-metrics (tests/imagenet_d.rs). Run from the
repository root:

    python3 tools/reference/make_imagenet_d_scoring.py

Follows github.com/chenshuang-zhang/imagenet_d at commit d8bb2df ("license"):

- Category names: `evaluate_vlm.py`, `test_model`: the folder's class name with
  `.replace('_', ' ').replace('-', ' ').replace('/', ' or ').lower()` (`category_name` below).
- Question: `LLaVA/llava/serve/eval_imagenet_d.py`, `main`: the distractor is the surrogate's
  top-1 class when it is not the ground truth, else its top-2
  (`row['top1_pred_cate'] if row['top1_pred_cate'] != gt_category else row['top2_pred_cate']`),
  and the question is
  f"What is the main object in this image? Choose from the following list: {gt_category}, {pred_category}."
  (ground truth first, distractor second; `question` below).
- Scoring: `LLaVA/compute_accuracy.py`: `word_mapping_dict` (the synonym map, copied as data:
  `SYNONYMS`), `test_word_mapping(word, answer, word_mapping_dict)` (`mentions` below: the
  category name itself is NOT lowercased, only the answer is: `answer_test = answer.lower()`),
  the per-row flag (`verdict` below: the two special pairs (pen, can opener) and (plate, drying
  rack for plates), whose names contain each other, decide by one name first; otherwise
  both -> "LLaVa DOUBLE", gt -> "LLaVa TRUE", distractor -> "LLaVa FALSE", neither ->
  "LLaVa TODO", written here as TRUE / FALSE / DOUBLE / NEITHER), and the accuracy
  `true_num / (true_num + false_num)` where the counts are flags containing "TRUE" / "FALSE"
  (`accuracy` below; None when both counts are 0, where the script divides 0 by 0).

Writes crates/atlas-metrics/tests/fixtures/imagenet_d_scoring.json: the synonym map, >= 200
cases (ground truth, the surrogate's top-1 and top-2, the distractor, the question, a made-up
answer, the expected verdict and the case's kind: both names, neither, synonyms of either side,
upper / mixed case, the special pairs, substrings inside other words, names normalised from
raw folder names) and the counts and accuracy per group and over all cases.
"""
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates/atlas-metrics/tests/fixtures/imagenet_d_scoring.json"
SEED = 20240615

# LLaVA/compute_accuracy.py, word_mapping_dict (data, in the file's order).
SYNONYMS = {
    "dishcloth": ["dishrag"],
    "weight (exercise)": ["dumbbell", "weight"],
    "nail (fastener)": ["nail"],
    "tv": ["television"],
    "iron (for clothes)": ["iron"],
    "t shirt": ["t-shirt", "shirt"],
    "laptop (open)": ["laptop"],
    "dress shoe (men)": ["dress shoe"],
    "binder (closed)": ["binder"],
    "portable heater": ["heater"],
    "computer mouse": ["mouse"],
    "still camera": ["camera"],
    "lampshade": ["lamp shade"],
    "trash bin": ["trash can"],
    "winter glove": ["glove"],
    "band aid": ["band-aid", "bandaid"],
    "toilet paper roll": ["roll of toilet paper"],
    "pill bottle": ["pill"],
    "soup bowl": ["bowl of soup"],
    "water bottle": ["bottle of water"],
    "pop can": ["can of"],
    "weight scale": ["scale"],
    "sandal": ["flip flop"],
    "swimming trunks": ["swimming trunk"],
    "bread loaf": ["bread"],
    "coffee or french press": ["coffee press", "french press", "coffee machine", "coffee maker"],
    "mixing or salad bowl": ["mixing bowl", "salad bowl"],
    "alarm clock": ["clock"],
    "wheel": ["bicycle wheel"],
    "ladle": ["spoon"],
    "matchstick": ["match"],
    "cellphone": ["cell phone", "mobile phone"],
}


def category_name(raw):
    """evaluate_vlm.py, test_model: the folder name as the category string."""
    return raw.replace("_", " ").replace("-", " ").replace("/", " or ").lower()


def distractor(gt, top1, top2):
    """eval_imagenet_d.py, main: the surrogate's top-1 if wrong, else its top-2."""
    return top1 if top1 != gt else top2


def question(gt, distractor_name):
    """eval_imagenet_d.py, main: the two-way multiple-choice question."""
    return f"What is the main object in this image? Choose from the following list: {gt}, {distractor_name}."


def mentions(word, answer):
    """compute_accuracy.py, test_word_mapping (answer already lowercased by the caller)."""
    if word in answer:
        return True
    if word in SYNONYMS:
        for map_word in SYNONYMS[word]:
            if map_word in answer:
                return True
    return False


def verdict(gt, pred, answer):
    """compute_accuracy.py, the per-row `correct_flag`."""
    answer_test = answer.lower()
    test_gt = mentions(gt, answer_test)
    test_pred = mentions(pred, answer_test)
    if gt == "pen" and pred == "can opener" or gt == "plate" and pred == "drying rack for plates":
        if test_pred:
            return "FALSE"
        if test_gt:
            return "TRUE"
        return "NEITHER"
    if gt == "can opener" and pred == "pen" or gt == "drying rack for plates" and pred == "plate":
        if test_gt:
            return "TRUE"
        if test_pred:
            return "FALSE"
        return "NEITHER"
    if test_gt and test_pred:
        return "DOUBLE"
    if test_gt:
        return "TRUE"
    if test_pred:
        return "FALSE"
    return "NEITHER"


def accuracy(verdicts):
    """compute_accuracy.py: counts and TRUE / (TRUE + FALSE) (None when that is 0 / 0)."""
    counts = {k: sum(v == k for v in verdicts) for k in ("TRUE", "FALSE", "DOUBLE", "NEITHER")}
    denom = counts["TRUE"] + counts["FALSE"]
    return {**counts, "accuracy": counts["TRUE"] / denom if denom else None}


PLAIN = [
    "dog", "cat", "car", "airplane", "banana", "chair", "bicycle", "umbrella", "bottle", "hammer",
    "backpack", "bench", "teapot", "pan", "ant", "bee", "table", "drum", "helmet", "rabbit",
]
RAW_FOLDERS = [
    "T-shirt", "coffee/french_press", "mixing/salad_bowl", "Toilet_Paper_Roll", "band_aid",
    "Weight_Scale", "trash_bin", "Pop_Can", "dress_shoe_(men)", "Still_Camera",
]
TEMPLATES = [
    "{x}", "The main object is {x}.", "It is a {x}.", "{X}", "The answer is: {x}", "A {x} on a table.",
    "I think this is a {x}, not anything else.", "{x}s", "This image shows {x}.", "{Xcap} in the picture",
]
OTHER_ANSWERS = [
    "I cannot tell.", "A photo.", "Nothing is shown.", "", "The image is blurry", "an object",
    "ÉLÉPHANT", "Zebra crossing", "something metallic", "The picture shows a landscape.",
]


def render(template, x):
    return template.format(x=x, X=x.upper(), Xcap=x.title())


def make_cases(rng):
    names = PLAIN + list(SYNONYMS) + [category_name(r) for r in RAW_FOLDERS]
    names = sorted(set(names), key=names.index)
    cases = []

    def add(kind, gt, top1, top2, answer):
        d = distractor(gt, top1, top2)
        cases.append({
            "kind": kind, "gt": gt, "top1": top1, "top2": top2, "distractor": d,
            "question": question(gt, d), "answer": answer, "verdict": verdict(gt, d, answer),
        })

    def pair():
        gt = rng.choice(names)
        other = rng.choice([n for n in names if n != gt])
        third = rng.choice([n for n in names if n not in (gt, other)])
        # Half the surrogates are right (top-1 == gt: the distractor is top-2).
        return (gt, gt, other) if rng.random() < 0.5 else (gt, other, third)

    for _ in range(50):
        gt, t1, t2 = pair()
        add("gt_named", gt, t1, t2, render(rng.choice(TEMPLATES), gt))
    for _ in range(40):
        gt, t1, t2 = pair()
        add("distractor_named", gt, t1, t2, render(rng.choice(TEMPLATES), distractor(gt, t1, t2)))
    for _ in range(30):
        gt, t1, t2 = pair()
        d = distractor(gt, t1, t2)
        a, b = (gt, d) if rng.random() < 0.5 else (d, gt)
        add("both_named", gt, t1, t2, rng.choice(["{a} or {b}", "Either {a} or {b}.", "{A}, {B}", "not a {a} but a {b}"]).format(a=a, b=b, A=a.upper(), B=b.upper()))
    for _ in range(30):
        gt, t1, t2 = pair()
        add("neither_named", gt, t1, t2, rng.choice(OTHER_ANSWERS))
    keys = list(SYNONYMS)
    for _ in range(40):
        key = rng.choice(keys)
        syn = rng.choice(SYNONYMS[key])
        other = rng.choice(PLAIN)
        if rng.random() < 0.5:
            add("synonym_gt", key, other, rng.choice(PLAIN), render(rng.choice(TEMPLATES), syn))
        else:
            add("synonym_distractor", other, key, other, render(rng.choice(TEMPLATES), syn))
    for gt, pred in [("pen", "can opener"), ("can opener", "pen"), ("plate", "drying rack for plates"), ("drying rack for plates", "plate")]:
        for answer in [gt, pred, f"{gt} and {pred}", "A PEN", "Can Opener", "plates on a rack", "drying rack for plates", "spoon", "openers"]:
            add("special_pair", gt, pred, gt, answer)
    for _ in range(20):
        gt, t1, t2 = pair()
        add("case", gt, t1, t2, rng.choice([gt.upper(), gt.title(), gt.swapcase(), "THE " + distractor(gt, t1, t2).upper()]))
    # Substrings inside other words and names that are only matched verbatim (the category name
    # is not lowercased: an upper-case name never matches).
    for gt, t1, t2, answer in [
        ("ant", "dog", "cat", "An elephant"), ("cat", "ant", "dog", "a catalogue of plants"),
        ("pan", "pen", "cat", "A PANDA"), ("bee", "ant", "dog", "beer bottles"),
        ("Dog", "cat", "ant", "dog"), ("dog", "Cat", "ant", "cat"), ("car", "cat", "ant", "scarf"),
        ("weight scale", "dog", "cat", "a scale"), ("pop can", "bottle", "cat", "a can of soda"),
        ("wheel", "bicycle", "cat", "bicycle wheel"), ("bicycle", "wheel", "cat", "bicycle wheel"),
        ("ladle", "spoon", "cat", "a spoon"), ("matchstick", "match", "dog", "a match"),
        ("tv", "dog", "cat", "A television set"), ("t shirt", "dog", "cat", "T-SHIRT"),
    ]:
        add("substring", gt, t1, t2, answer)
    return cases


def compact_json(fixture):
    """The fixture as JSON with one case (or one synonym entry / group) per line."""
    lines = ["{"]
    keys = list(fixture)
    for k, key in enumerate(keys):
        value = fixture[key]
        comma = "," if k + 1 < len(keys) else ""
        if isinstance(value, list):
            items = [json.dumps(v, ensure_ascii=False) for v in value]
            lines.append(f" {json.dumps(key)}: [\n  " + ",\n  ".join(items) + f"\n ]{comma}")
        elif isinstance(value, dict) and key != "all":
            items = [f"{json.dumps(a)}: {json.dumps(b, ensure_ascii=False)}" for a, b in value.items()]
            lines.append(f" {json.dumps(key)}: {{\n  " + ",\n  ".join(items) + f"\n }}{comma}")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}{comma}")
    return "\n".join(lines) + "\n}\n"


def main():
    rng = random.Random(SEED)
    cases = make_cases(rng)
    assert len(cases) >= 200, len(cases)
    groups = {}
    for i, c in enumerate(cases):
        c["group"] = ["background", "texture", "material"][i % 3]
        groups.setdefault(c["group"], []).append(c["verdict"])
    # A group with no TRUE / FALSE (accuracy undefined).
    for answer in ["dog and cat", "nothing"]:
        c = {"kind": "undefined_group", "gt": "dog", "top1": "cat", "top2": "dog", "distractor": "cat",
             "question": question("dog", "cat"), "answer": answer, "verdict": verdict("dog", "cat", answer), "group": "empty"}
        cases.append(c)
        groups.setdefault("empty", []).append(c["verdict"])
    names = {raw: category_name(raw) for raw in RAW_FOLDERS}
    fixture = {
        "source": "github.com/chenshuang-zhang/imagenet_d@d8bb2df: LLaVA/compute_accuracy.py, "
                  "LLaVA/llava/serve/eval_imagenet_d.py (main), evaluate_vlm.py (test_model)",
        "synonyms": SYNONYMS,
        "category_names": names,
        "cases": cases,
        "groups": {g: accuracy(v) for g, v in sorted(groups.items())},
        "all": accuracy([c["verdict"] for c in cases]),
    }
    OUT.write_text(compact_json(fixture))
    kinds = {}
    for c in cases:
        kinds.setdefault(c["kind"], {}).setdefault(c["verdict"], 0)
        kinds[c["kind"]][c["verdict"]] += 1
    print(f"wrote {OUT.relative_to(ROOT)}: {len(cases)} cases")
    for k, v in kinds.items():
        print(f"  {k}: {v}")
    print("  all:", fixture["all"])


if __name__ == "__main__":
    main()
