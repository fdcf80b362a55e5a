"""A small numpy BVH reader with forward kinematics, independent of vimo's C++ parser: the reference the
BVH import and export tests compare against."""
import pathlib

import numpy as np


def rot(axis, deg):
    """Rotation matrices [..., 3, 3] about axis "X", "Y" or "Z" by `deg` degrees ([...])."""
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    o, l = np.zeros_like(a), np.ones_like(a)
    m = {"X": [l, o, o, o, c, -s, o, s, c], "Y": [c, o, s, o, l, o, -s, o, c], "Z": [c, -s, o, s, c, o, o, o, l]}[axis]
    return np.stack(m, -1).reshape(a.shape + (3, 3))


def read_bvh(path):
    """Returns (names, positions [T, J, 3], frame time): every joint's position in file units, end sites
    named None. Channel rotations are intrinsic, applied in file order; position channels add to OFFSET."""
    tok = pathlib.Path(path).read_text().split()
    i, names, parents, offsets, chans, stack = 0, [], [], [], [], []
    while tok[i] != "MOTION":
        t = tok[i]
        if t in ("ROOT", "JOINT"):
            names.append(tok[i + 1]); parents.append(stack[-1] if stack else -1); i += 2
        elif t == "End":
            names.append(None); parents.append(stack[-1]); i += 2
        elif t == "{":
            stack.append(len(names) - 1); i += 1
        elif t == "}":
            stack.pop(); i += 1
        elif t == "OFFSET":
            offsets.append(np.array(tok[i + 1:i + 4], float)); chans.append([]); i += 4
        elif t == "CHANNELS":
            n = int(tok[i + 1]); chans[-1] = tok[i + 2:i + 2 + n]; i += 2 + n
        else:
            i += 1
    frames = int(tok[i + 2]); dt = float(tok[i + 5])
    data = np.array(tok[i + 6:], float).reshape(frames, -1)
    col, pos, glob = 0, [], []
    for j in range(len(names)):
        tr = np.tile(offsets[j], (frames, 1))
        r = np.tile(np.eye(3), (frames, 1, 1))
        for c in chans[j]:
            v = data[:, col]; col += 1
            if c.endswith("position"):
                tr[:, "XYZ".index(c[0])] += v
            else:
                r = r @ rot(c[0], v)
        if parents[j] < 0:
            pos.append(tr); glob.append(r)
        else:
            p = parents[j]
            pos.append(pos[p] + np.einsum("tij,tj->ti", glob[p], tr)); glob.append(glob[p] @ r)
    return names, np.stack(pos, 1), dt
