"""Unpickling a checkpoint's pickles safely: an allow-list of globals, and bounds on size.

A checkpoint's pickle is untrusted. Two things protect the reader:

* ``Unpickler.find_class`` allows only the few globals a checkpoint of tensors needs (the
  torch rebuild functions, re-implemented in ``tensors.py``, storage types, OrderedDict);
  anything else is refused before it could be imported or called;
* ``checked_pickle`` walks the pickle's opcodes with ``pickletools.genops`` (which runs
  nothing) before the C unpickler sees it, and simulates its stack to measure the object
  graph it would build. A pickle may reference one object many times (the memo), so a small
  file can describe a tree of 2**40 nodes (``l1 = [l0, l0]; l2 = [l1, l1]; ...``): hashing,
  printing or copying such a tree never ends. The walk refuses pickles whose tree (every
  shared object counted once per reference), nesting, opcode count or byte size exceed the
  limits below; everything later may then walk the tree naively.
"""

import io
import pickle
import pickletools

from ..errors import CheckpointError

# Limits, far above what an FOMM checkpoint needs (the tiny-vox fixture has vox's layers and
# optimizer states: 76 KB of pickle, 21 000 opcodes, nesting 8, a tree of 15 000 nodes).
MAX_PICKLE_BYTES = 32 * 2**20
MAX_OPCODES = 400_000
MAX_TREE_NODES = 2_000_000
MAX_DEPTH = 64


class RefusedGlobal(CheckpointError):
    """The pickle asked for a global outside the allow-list (it was neither imported nor run)."""


class UnsupportedType(CheckpointError):
    """A valid torch file holding something numpy cannot represent."""


class LimitExceeded(CheckpointError):
    """The file describes more than the reader's bounds allow (see the limits above)."""


class Guarded:
    """An allow-listed function as the unpickler hands it out. A pickle can BUILD (set
    attributes on) any object it holds; a plain function would let it replace the function's
    ``__defaults__`` for every later load, so it only gets this wrapper, which refuses state."""

    __slots__ = ("function",)

    def __init__(self, function):
        self.function = function

    def __call__(self, *args):
        return self.function(*args)

    def __setstate__(self, state):
        raise pickle.UnpicklingError("state set on a rebuild function")


class _Node:
    """One object of the simulated pickle stack: the objects it holds, by reference."""

    __slots__ = ("children", "tree", "height")

    def __init__(self, children=()):
        self.children = list(children)
        self.tree = None  # nodes in its tree, shared objects counted once per reference
        self.height = None


_MARK = object()


def _kind(op):
    """How an opcode moves the stack: (kind, items it pops, or None for 'down to the mark')."""
    name, before = op.name, op.stack_before
    pops = None if pickletools.markobject in before else len(before)
    if name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "GET", "BINGET", "LONG_BINGET"):
        return name.rsplit("_", 1)[-1].replace("BIN", ""), 0
    if name in ("MARK", "POP", "POP_MARK", "DUP"):
        return name, 0
    if name in ("APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"):
        # add the items above the object below them (or above the mark) to that object
        return "ADD", None if pops is None else pops - 1
    if not op.stack_after:
        return "SKIP", 0  # PROTO, FRAME, STOP
    return "NEW", pops  # constructors: pop their inputs, push one object holding them


_KINDS = {op.name: _kind(op) for op in pickletools.opcodes}


def _pop_mark(stack):
    items = []
    while True:
        if not stack:
            raise pickle.UnpicklingError("pickle pops past its stack")
        item = stack.pop()
        if item is _MARK:
            return items[::-1]
        items.append(item)


def _pop(stack, n):
    if not n:
        return []
    items = stack[-n:]
    if len(items) != n or any(item is _MARK for item in items):
        raise pickle.UnpicklingError("pickle pops past its stack")
    del stack[-n:]
    return items


def _step(op, arg, stack, memo):
    """Apply one opcode's effect on the stack of ``_Node``."""
    kind, pops = _KINDS[op.name]
    if kind == "NEW":
        stack.append(_Node(_pop_mark(stack) if pops is None else _pop(stack, pops)))
    elif kind == "PUT" or kind == "MEMOIZE":
        if not stack or stack[-1] is _MARK:
            raise pickle.UnpicklingError("memoizing an empty stack")
        key = len(memo) if kind == "MEMOIZE" else arg
        if key > len(memo):  # picklers number memo entries 0, 1, 2, ...
            raise ValueError(f"pickle memo index {key} out of range")
        memo[key] = stack[-1]
    elif kind == "GET":
        if arg not in memo:
            raise ValueError(f"pickle memo index {arg} was never stored")
        stack.append(memo[arg])
    elif kind == "MARK":
        stack.append(_MARK)
    elif kind == "ADD":
        items = _pop_mark(stack) if pops is None else _pop(stack, pops)
        if not stack or stack[-1] is _MARK:
            raise pickle.UnpicklingError(f"{op.name} without a target")
        stack[-1].children.extend(items)
    elif kind == "POP":
        _pop(stack, 1) if stack and stack[-1] is not _MARK else _pop_mark(stack)
    elif kind == "POP_MARK":
        _pop_mark(stack)
    elif kind == "DUP":
        stack.append(_pop(stack, 1)[0])
        stack.append(stack[-1])


def _measure(node, depth=0):
    """Nodes in ``node``'s tree and its height; memoized, so the walk is linear in the graph.
    A cycle (a list appended into itself) shows as endless nesting and is refused as such."""
    if node.tree is not None:
        return node.tree, node.height
    if depth > MAX_DEPTH:
        raise LimitExceeded(f"objects nested more than {MAX_DEPTH} deep (or a cycle)")
    tree, height = 1, 0
    for child in node.children:
        child_tree, child_height = _measure(child, depth + 1)
        tree, height = tree + child_tree, max(height, child_height + 1)
        if tree > MAX_TREE_NODES:
            raise LimitExceeded(
                f"objects reference each other more than {MAX_TREE_NODES} times "
                f"(an exponential pickle)"
            )
    node.tree, node.height = tree, height
    return tree, height


def checked_pickle(f):
    """The next pickle in ``f`` as a BytesIO, once its opcodes are known to build a bounded
    object tree with a consistent memo. The C unpickler trusts sizes in the data: a damaged
    memo index such as 2**30 would make it allocate and clear gigabytes."""
    start = f.tell()
    stack, memo, count = [], {}, 0
    for op, arg, _ in pickletools.genops(f):
        count += 1
        if count > MAX_OPCODES or f.tell() - start > MAX_PICKLE_BYTES:
            raise LimitExceeded(
                f"a pickle longer than {MAX_OPCODES} opcodes or {MAX_PICKLE_BYTES} bytes"
            )
        _step(op, arg, stack, memo)
    if len(stack) != 1 or stack[0] is _MARK:
        raise pickle.UnpicklingError("pickle does not end with one object")
    _measure(stack[0])
    end = f.tell()
    f.seek(start)
    return io.BytesIO(f.read(end - start))


def _ascii(value):
    # Files pickled by Python 2 torch carry bytes where Python 3 writes str.
    return value.decode("ascii") if isinstance(value, bytes) else value


def short(value):
    """A description of an untrusted value for an error message, without its repr (which
    could be huge); strings and numbers are shown cut to 40 characters."""
    if isinstance(value, (str, bytes, int, float, bool, type(None))):
        return repr(value)[:40]
    return f"a {type(value).__name__}"


class PlainUnpickler(pickle.Unpickler):
    """Headers and key lists are plain data: any global there means the file is damaged."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"unexpected global {short(module)}.{short(name)}")


class Unpickler(pickle.Unpickler):
    """The main pickle. ``allowed`` maps (module, name) to the object standing in for it;
    ``storage_type(module, name)`` returns a storage type or None; ``persistent`` turns a
    persistent id (a storage) into an object. Anything else is refused."""

    def __init__(self, file, allowed, storage_type, persistent):
        super().__init__(file)
        self._allowed, self._storage_type, self._persistent = allowed, storage_type, persistent

    def find_class(self, module, name):
        if (module, name) in self._allowed:
            return Guarded(self._allowed[(module, name)])
        found = self._storage_type(module, name)
        if found is not None:
            return found
        raise RefusedGlobal(f"{module}.{name}"[:120])

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or _ascii(pid[0]) != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {short(pid)}")
        return self._persistent(tuple(_ascii(p) for p in pid))
