"""`@unfused`: statements the deploy form keeps as written.

A statement with the role `@unfused` (and everything inside it) is left alone by fuse-reparam:
no rule reads it as a term, nothing inside it is rewritten. It is how a spec says what a
reference deploy form keeps (timm's FastViT keeps the conv+BN of its ConvMlp). A block called
from such a statement keeps its train-form body there; when the same block is also called where
fusion may rewrite it, the kept calls go to a copy of the block under a new name, so each call
site gets the class its form needs.
"""

from __future__ import annotations

import dataclasses

from archlang import syntax as S

UNFUSED = "unfused"


def is_unfused(st) -> bool:
    return UNFUSED in getattr(st, "roles", ())


def calls(body, blocks: dict, skip_unfused: bool) -> list[str]:
    """Blocks a body calls, directly or through other blocks (with `skip_unfused`, not through
    `@unfused` statements)."""
    todo, seen = [body], []
    while todo:
        for st in _walk(todo.pop(), skip_unfused):
            if isinstance(st, S.Layer) and st.callee in blocks and st.callee not in seen:
                seen.append(st.callee)
                todo.append(blocks[st.callee].body)
    return seen


def split_unfused(model: S.BlockDef, blocks: dict) -> tuple[S.BlockDef, dict, dict[str, str]]:
    """(model, blocks, kept): calls under `@unfused` statements go to blocks fusion must not
    rewrite (`kept`, kept name -> the block's own name): the block itself when only such calls
    reach it, else a copy."""
    fused = set(calls(model.body, blocks, skip_unfused=True))
    kept_roots = [st for st in S.walk(model.body) if is_unfused(st)]
    for name in fused:
        kept_roots += [st for st in S.walk(blocks[name].body) if is_unfused(st)]
    kept = set(calls(tuple(kept_roots), blocks, skip_unfused=False))
    if not kept:
        return model, blocks, {}
    renames = {name: _fresh(f"{name}_unfused", blocks) for name in sorted(kept & fused)}
    out = dict(blocks)
    for name in kept:
        bdef = blocks[name]
        out[renames.get(name, name)] = dataclasses.replace(bdef, name=renames.get(name, name),
                                                           body=_rename(bdef.body, renames, True))
    for name in fused:
        out[name] = dataclasses.replace(out[name], body=_rename(out[name].body, renames, False))
    model = dataclasses.replace(model, body=_rename(model.body, renames, False))
    return model, out, {renames.get(name, name): name for name in kept}


def restore_names(model: S.BlockDef, blocks: dict, kept: dict[str, str]) -> tuple[S.BlockDef, dict]:
    """A copy takes its block's own name back when the deploy form no longer calls the
    original (every other call fused it away)."""
    called = set(calls(model.body, blocks, skip_unfused=False))
    back = {copy: name for copy, name in kept.items() if copy != name and name not in called}
    if not back:
        return model, blocks
    out = {}
    for name, bdef in blocks.items():
        if name in back.values():
            continue
        new = back.get(name, name)
        out[new] = dataclasses.replace(bdef, name=new, body=_rename(bdef.body, back, True))
    return dataclasses.replace(model, body=_rename(model.body, back, True)), out


def _rename(body: tuple, renames: dict, inside: bool) -> tuple:
    """`body` with calls of renamed blocks pointing to the copies, where they are kept (inside an
    `@unfused` statement, or everywhere when `inside`)."""
    out = []
    for st in body:
        here = inside or is_unfused(st)
        if here and isinstance(st, S.Layer) and st.callee in renames:
            st = dataclasses.replace(st, callee=renames[st.callee])
        out.append(S.map_bodies(st, lambda b, here=here: _rename(b, renames, here)))
    return tuple(out)


def _walk(body, skip_unfused: bool):
    for st in body:
        if skip_unfused and is_unfused(st):
            continue
        yield st
        for sub in S.sub_bodies(st):
            yield from _walk(sub, skip_unfused)


def _fresh(name: str, blocks: dict) -> str:
    n, out = 1, name
    while out in blocks:
        n += 1
        out = f"{name}{n}"
    return out
