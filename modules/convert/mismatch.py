"""The message of a checkpoint that does not fit its config: one sentence that says how they
differ, then a few of the keys.

A checkpoint of another size (vox-256.yaml with a tiny checkpoint) differs in almost every
tensor; listing them all made a line of thousands of characters that hid the cause.
"""

from collections import Counter

# The keys listed after the summary: at most this many, in at most this many characters.
MAX_KEYS = 10
MAX_CHARS = 360


def describe(what, misshaped, missing=(), unexpected=(), other=()):
    """'WHAT does not match the config: SUMMARY; KEY ...; ... and N more'. ``misshaped``:
    {key: (checkpoint shape, config shape)}; ``missing``, ``unexpected``: keys; ``other``:
    sentences about single keys (an anti-alias kernel that differs)."""
    return f"{what} does not match the config: {summary(misshaped, missing, unexpected, other)}" + (
        f"; {details(misshaped, missing, unexpected, other)}"
    )


def summary(misshaped, missing=(), unexpected=(), other=()):
    """One clause per kind of difference, the most telling first."""
    clauses = []
    if misshaped:
        clauses.append(_shapes(misshaped))
    if missing:
        clauses.append(f"it lacks {_count(len(missing), 'tensor')} of the config's model")
    if unexpected:
        clauses.append(f"it has {_count(len(unexpected), 'tensor')} the config's model has not")
    if other and not clauses:
        clauses.append("its anti-alias kernel is not the one the config's scale_factor gives")
    return ", and ".join(clauses)


def _shapes(misshaped):
    """What the shape differences mean: keypoints, jacobian maps, else layer widths."""
    heads = {  # the keypoint detector's heads: out channels per keypoint, per jacobian map
        "kp.weight": (1, "keypoint", "num_kp"),
        "jacobian.weight": (4, "jacobian map", "num_kp, single_jacobian_map"),
    }
    for key, (per, noun, params) in heads.items():
        got, want = misshaped.get(key, ((0,), (0,)))
        if got[0] != want[0]:
            return (
                f"it has {_count(got[0] // per, noun)} where the config asks for "
                f"{want[0] // per} ({params})"
            )
    convolutions = [
        shapes for shapes in misshaped.values() if len(shapes[0]) == len(shapes[1]) == 4
    ]
    for axis, form in (
        (0, "it has {}-channel layers where the config asks for {}"),
        (1, "its layers take {} channels where the config's take {}"),
    ):
        pairs = Counter(
            (got[axis], want[axis]) for got, want in convolutions if got[axis] != want[axis]
        )
        if pairs:
            return form.format(*pairs.most_common(1)[0][0])
    return f"{len(misshaped)} of its tensors differ in shape from the config's"


def details(misshaped, missing=(), unexpected=(), other=()):
    """The keys, shapes first, until MAX_KEYS or MAX_CHARS; then how many more."""
    items = [
        f"{key} has shape {list(got)} in the checkpoint but the config gives {list(want)}"
        for key, (got, want) in misshaped.items()
    ]
    items += [("missing keys", key) for key in missing]
    items += [("unexpected keys", key) for key in unexpected]
    items += list(other)
    parts, shown, length, label = [], 0, 0, None
    for item in items:
        text = item if isinstance(item, str) else item[1]
        if shown and (shown == MAX_KEYS or length + len(text) > MAX_CHARS):
            break
        if isinstance(item, str):
            parts.append(text)
            label = None
        elif item[0] == label:
            parts[-1] += f", {text}"
        else:
            label = item[0]
            parts.append(f"{label}: {text}")
        shown += 1
        length += len(text) + 2
    left = len(items) - shown
    return "; ".join(parts) + (f"; ... and {left} more" if left else "")


def _count(number, noun):
    return f"{number} {noun}" + ("" if number == 1 else "s")
