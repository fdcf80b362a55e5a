"""Share of generated m2t captions that name the right interaction type of synthetic clips.

Usage: python scripts/m2t_type_accuracy.py --hyps runs/X/score_test/m2t_hyps.json --refs runs/X/score_test/m2t_refs.json
       [--meta data/synthetic/synth_meta.json]   (the generator's own type of each clip as the truth)
The type of a caption is found from the words the synthetic generator uses for each type
(src/motion/synth_caption.cpp); the same rule is applied to the reference captions, so its own
accuracy on them is printed as a check of the rule."""
import argparse
import json
import re

# First match wins: more specific phrases before words shared by several types.
TYPES = [
    ("high_five", [r"high[- ]five", r"slaps it", r"clap hands"]),
    ("handshake", [r"shake", r"handshake"]),
    ("hug", [r"\bhug", r"embrace"]),
    ("dance", [r"danc", r"around each other", r"in a circle"]),  # before wave: dancers wave their arms
    ("wave", [r"\bwav"]),
    ("push", [r"\bpush", r"shove"]),
    ("punch", [r"punch"]),
    ("kick", [r"\bkick"]),
    ("bow", [r"\bbow"]),
    ("follow", [r"follow", r"trail", r"leads the way", r"walks ahead"]),
    ("walk_together", [r"side by side", r"shoulder to shoulder", r"walk together", r"next to each other",
                       r"beside", r"side as they", r"walk(s)? .*together"]),
    ("hand_over", [r"object", r"item", r"something", r"hands .* over", r"passes"]),
]


def type_of(caption):
    c = caption.lower()
    for name, pats in TYPES:
        if any(re.search(p, c) for p in pats):
            return name
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hyps", required=True)
    ap.add_argument("--refs", required=True)
    ap.add_argument("--meta", help="synth_meta.json of `vimo data synth`: the true type of each clip")
    a = ap.parse_args()
    hyps, refs = json.load(open(a.hyps)), json.load(open(a.refs))
    meta = {m["id"]: m["type"] for m in json.load(open(a.meta))["clips_meta"]} if a.meta else {}
    ok = ref_ok = n = 0
    for cid, hyp in hyps.items():
        truth = [type_of(r) for r in refs[cid]]
        # the generator's type, else the type most reference captions name
        t = meta[cid] if meta else max(set(truth), key=truth.count)
        ref_ok += all(x == t for x in truth)
        ok += type_of(hyp) == t
        n += 1
    print(json.dumps({"clips": n, "type_accuracy": ok / max(1, n), "rule_consistency_on_refs": ref_ok / max(1, n)}))


if __name__ == "__main__":
    main()
