"""fuse-reparam: rewrite a program into its deploy form by applying the fusion rule table.

The rules (passes/fusion_rules.py) rewrite statement lists inside block bodies, so the emitted
deploy module keeps one class per block. One driver applies them: nested bodies first, then
every rule at every position of a list until none fires, over all blocks and the model until
nothing changes. Between rules, `collapse_block` makes a block (or inline group) whose body
fused into one layer *be* that layer at its call sites (timm's `.fuse()`), unless that layer was
named with `as NAME`. Before the rules run, `if`s whose condition is the same in every instance
are resolved, since the deploy form is for one build. A rule fires only when its preconditions
hold for every instance of the block (checked on concrete values from elaboration).

Every fused layer carries its recipe as data (`syntax.Fused`); elaboration records it under the
fused module's path. The result also says where each rule fired and, for every candidate that
did not fuse, why (`archlang build --fuse --explain`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from archlang import syntax as S
from archlang.errors import ArchError, Span
from archlang.ir import Graph
from archlang.program import Program, literal

from . import register
from .fusion_exprs import ExprFolder, Failed, Folded
from .fusion_rules import COLLAPSE, RULES, Match, Rule, fused_layer, statement_rules
from .fusion_syntax import call_binding, free_names, plain, stmt_exprs, subst, subst_layer
from .fusion_terms import Ctx
from .fusion_unfused import calls, is_unfused, restore_names, split_unfused

MAX_ROUNDS = 32


@dataclass(frozen=True)
class Event:
    """A rule that fired (reason None) or a candidate it could not fuse, and where."""

    rule: str
    span: Span
    block: str | None  # the block whose body it is in; None for the model
    path: tuple[str, ...]  # labels of groups and labelled loops inside that body
    reason: str | None = None


@dataclass
class Fusion:
    program: Program
    events: list[Event] = field(default_factory=list)

    @property
    def fired(self) -> list[Event]:
        return [e for e in self.events if e.reason is None]

    @property
    def unfused(self) -> list[Event]:
        return [e for e in self.events if e.reason is not None]

    @property
    def applied(self) -> list[tuple[str, str]]:
        """(rule, file:line) of every rule that fired."""
        return sorted({(e.rule, f"{e.span.file}:{e.span.line}") for e in self.fired})


class Driver:
    def __init__(self, program: Program, graph: Graph):
        self.program, self.graph = program, graph
        self.ctx = Ctx(program, graph)
        self.collapsible: dict[str, tuple] = {}  # block -> (definition, its one fused layer, lets)
        self.events: dict[Event, None] = {}
        self.explaining = False

    def log(self, rule: str, span: Span, reason: str | None = None) -> None:
        block, path = self.ctx.scope
        self.events.setdefault(Event(rule, span, block, path, reason))

    # ---------------------------------------------------------------- whole program

    def run(self) -> Fusion:
        model, blocks, kept = split_unfused(self.program.model, dict(self.program.blocks))
        used = [name for name in blocks if name in self.graph.instances and name not in kept]
        for _ in range(MAX_ROUNDS):
            before = (model, [blocks[n] for n in used])
            for name in used:
                blocks[name] = self.block(blocks[name])
            model = dataclasses.replace(model, body=self.body(model.body, (), [{}], None))
            if before == (model, [blocks[n] for n in used]):
                break
        self.explaining = True  # one more pass, rewriting nothing: what did not fuse, and why
        deployed = [name for name in calls(model.body, blocks, skip_unfused=True) if name in self.graph.instances]
        for name in deployed:
            self.body(blocks[name].body, tuple(p.name for p in blocks[name].params), self.envs(name), name)
        self.body(model.body, (), [{}], None)
        self.check_names(model, [blocks[n] for n in deployed])
        model, blocks = restore_names(model, blocks, kept)
        return Fusion(dataclasses.replace(self.program, blocks=blocks, model=model), list(self.events))

    def envs(self, name: str) -> list[dict]:
        return [env for _, env in self.graph.instances[name]]

    def block(self, bdef: S.BlockDef) -> S.BlockDef:
        body = self.body(bdef.body, tuple(p.name for p in bdef.params), self.envs(bdef.name), bdef.name)
        bdef = dataclasses.replace(bdef, body=body)
        self.ctx.units[bdef.name] = (bdef, body)  # callers may fold it where it is one term
        rest = [s for s in body if not isinstance(s, (S.Let, S.Pass))]
        if len(rest) == 1 and collapses(rest[0]) and bdef.name not in self.collapsible and len(bdef.inputs) == 1:
            # The recipe stays relative to the block's scope; call sites prefix their label.
            self.collapsible[bdef.name] = (bdef, rest[0], [s for s in body if isinstance(s, S.Let)])
            self.ctx.scope = (bdef.name, ())
            self.log(COLLAPSE, bdef.span)
        return bdef

    def body(self, body: tuple, params: tuple[str, ...], envs: list[dict], block: str | None) -> tuple:
        self.ctx.enter(body, params, envs, block)
        return self.rewrite(specialize(body, self.ctx), frozenset())

    # ---------------------------------------------------------------- statement lists

    def rewrite(self, stmts: tuple, live_after: frozenset[str]) -> tuple:
        """Apply the rules to a statement list and to every nested body, to a fixed point."""
        stmts = tuple(self.nested(st, live_after | reads(stmts[k + 1:])) for k, st in enumerate(stmts))
        while True:
            out = self.step(stmts, live_after)
            if out is None:
                return stmts
            stmts = out

    def step(self, stmts: tuple, live_after: frozenset[str]) -> tuple | None:
        """The list after the first rule that fires, or None (recording, when explaining, why
        each candidate did not fuse)."""
        for i in range(len(stmts)):
            if is_unfused(stmts[i]):
                continue
            for rule, pattern in statement_rules():
                m = pattern.match(stmts, i, self.ctx)
                if m is None:
                    continue
                why = rule.check(m, self.ctx)
                if why is None and not self.explaining:
                    self.log(rule.name, m.span)
                    return self.splice(stmts, m, rule)
                if why is not None and self.explaining:
                    self.log(rule.name, m.span, why)
            folded = ExprFolder(stmts, i, self.ctx, live_after).run()
            if isinstance(folded, Failed) and self.explaining:
                self.log(folded.rule.name, folded.span, folded.reason)
            elif isinstance(folded, Folded) and not self.explaining:
                for rule, span in folded.fired:
                    self.log(rule.name, span)
                return self.splice_expr(stmts, i, folded)
        return None

    def splice(self, stmts: tuple, m: Match, rule: Rule) -> tuple:
        if rule.rewrite is None:
            return stmts[:m.start] + stmts[m.stop:]
        new = rule.rewrite(m, rule.result(m), rule.name)
        return stmts[:m.start] + (new,) + stmts[m.stop:]

    def splice_expr(self, stmts: tuple, i: int, folded: Folded) -> tuple:
        st = stmts[i]
        layers = [stmts[k] for k in sorted(folded.consumed) if isinstance(stmts[k], (S.Layer, S.Group))]
        roles = tuple(dict.fromkeys(r for s in [*layers, st] for r in s.roles))
        if folded.source == "x" and st.targets == ("x",):
            inputs, targets = None, None
        else:
            inputs, targets = (S.Name(st.span, folded.source),), st.targets
        new = fused_layer(folded.term, folded.fired[-1][0].name, layers[0].label, False, st.span,
                          roles + folded.term.template.roles, inputs, targets)
        return tuple(new if k == i else s for k, s in enumerate(stmts) if k not in folded.consumed)

    def nested(self, st, live_after: frozenset[str]):
        block, path = self.ctx.scope
        if isinstance(st, S.Group) or isinstance(st, S.For) and st.label is not None:
            self.ctx.scope = (block, path + (st.label.name,))
        try:
            if is_unfused(st):
                return st
            if isinstance(st, S.Group):
                return self.collapse_group(dataclasses.replace(st, body=self.rewrite(st.body, frozenset())))
            if isinstance(st, S.Layer) and st.callee in self.collapsible and not self.explaining:
                return self.inline_call(st)
            if isinstance(st, S.If):
                return self.rewrite_if(st, live_after)
            return S.map_bodies(st, lambda b: self.rewrite(b, live_after))
        finally:
            self.ctx.scope = (block, path)

    def rewrite_if(self, st: S.If, live_after: frozenset[str]) -> S.If:
        """Rewrite each arm for the instances that take it: a sum whose identity branch only some
        instances have fuses where they do. Arms no instance takes are dropped (the deploy form
        is for this build) and the last arm left becomes the `else`, so arms that fused alike
        emit one constructor."""
        split = self.ctx.arm_envs(st)
        arms = [*st.arms, (None, st.orelse or ())]
        if split is None or sum(1 for envs in split if envs) < 2:
            return S.map_bodies(st, lambda b: self.rewrite(b, live_after))
        saved, out = self.ctx.envs, []
        for (test, body), envs in zip(arms, split):
            if not envs:
                continue
            self.ctx.envs = envs
            try:
                out.append((test, self.rewrite(specialize(body, self.ctx), live_after)))
            finally:
                self.ctx.envs = saved
        return dataclasses.replace(st, arms=tuple(out[:-1]), orelse=out[-1][1])

    # ---------------------------------------------------------------- collapse_block

    def collapse_group(self, st: S.Group):
        body = [s for s in st.body if not isinstance(s, S.Pass)]
        if self.explaining or len(body) != 1 or not collapses(body[0]):
            return st
        only = body[0]
        recipe = scoped(st.label, only.fused.recipe)
        self.log(COLLAPSE, st.span)
        return dataclasses.replace(only, label=st.label, span=st.span, roles=_union(st.roles, only.roles),
                                   inputs=st.inputs, targets=st.targets,  # a bound group keeps its binding
                                   fused=dataclasses.replace(only.fused, recipe=recipe))

    def inline_call(self, st: S.Layer) -> S.Layer:
        """Replace `label: block(args)` by the single fused layer the block's body became."""
        bdef, inner, lets = self.collapsible[st.callee]
        names = {p.name for p in bdef.params}
        spec_level = set().union(*(free_names(e) for s in (inner, *lets) for e in stmt_exprs(s)))
        if (spec_level - names - {let.name for let in lets}) & self.ctx.local:
            return st  # the block reads a spec param that the caller's own names would shadow
        binding = call_binding(bdef, st)
        for let in lets:
            binding[let.name] = subst(let.value, binding)
        new = subst_layer(inner, binding)
        return dataclasses.replace(new, label=st.label, span=st.span, roles=_union(st.roles, inner.roles),
                                   inputs=st.inputs, targets=st.targets,
                                   fused=dataclasses.replace(inner.fused, recipe=scoped(st.label, inner.fused.recipe)))

    def check_names(self, model: S.BlockDef, blocks: list[S.BlockDef]) -> None:
        for body in [model.body] + [b.body for b in blocks]:
            for st in S.walk(body):
                if isinstance(st, S.Layer) and st.fused is not None and st.label is None \
                        and st.fused.recipe[0] != "own":
                    raise ArchError("fused branches need a module name", st.span,
                                    hint="write `sum as NAME { ... }` (or `residual as NAME { ... }`)")


# ---------------------------------------------------------------- helpers


def _union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    """Roles of a call and of what it collapsed to, each once (`token_mixer`, not twice)."""
    return tuple(dict.fromkeys(a + b))


def collapses(st) -> bool:
    """A fused layer of x whose label no `as NAME` chose: its block or group can become it."""
    return isinstance(st, S.Layer) and plain(st) and st.fused is not None and not st.fused.named


def scoped(label: S.Label | None, recipe: tuple) -> tuple:
    """A recipe moved under the module `label`: by name, or as the fused module's own path."""
    if label is not None and label.index is None:
        return ("at", label.name, recipe)
    return ("own", recipe)


def reads(stmts) -> frozenset[str]:
    """Every name the statements mention (a conservative set of what they read)."""
    out = {"x"}
    for st in S.walk(stmts):
        for e in stmt_exprs(st):
            out |= free_names(e)
    return frozenset(out)


def specialize(stmts: tuple, ctx: Ctx) -> tuple:
    """Resolve every `if` whose condition has one value across all instances of the body."""
    out = []
    for st in stmts:
        if isinstance(st, S.If):
            chosen = _choose(st, ctx)
            if chosen is not None:
                out.extend(_with_roles(specialize(chosen, ctx), st.roles))
                continue
        if isinstance(st, S.Branches) and any(S.optional_branch(b) for b in st.branches):
            decided = _decide_branches(st, ctx)
            if decided is not None:
                out.extend(_with_roles(specialize(decided, ctx), st.roles))
                continue
        out.append(S.map_bodies(st, lambda b: specialize(b, ctx)))
    return tuple(out)


def _with_roles(stmts: tuple, roles: tuple[str, ...]) -> tuple:
    """Statements that replace an `if` or a sum keep its roles (they apply to what is inside)."""
    if not roles:
        return stmts
    return tuple(dataclasses.replace(st, roles=tuple(dict.fromkeys(roles + st.roles))) for st in stmts)


def _decide_branches(st: S.Branches, ctx: Ctx) -> tuple | None:
    """A sum with optional branches as plain sums: the one sum every instance computes, or an
    `if` with one arm per combination of branches that instances have (so each arm's sum can
    fuse for the instances that take it). None when a condition is not known."""
    optional = [(k, S.optional_branch(b)) for k, b in enumerate(st.branches) if S.optional_branch(b)]
    splits = [ctx.arm_envs(opt) for _, opt in optional]
    if any(split is None for split in splits):
        return None
    picks: dict[tuple, None] = {}  # per instance: the arm each optional branch takes (None: left out)
    for env in ctx.envs:
        picks.setdefault(tuple(next((a for a, envs in enumerate(split[:-1]) if any(e is env for e in envs)), None)
                               for split in splits))
    arms = [(_combination_test(optional, pick), _plain_sum(st, optional, pick)) for pick in picks]
    if len(arms) == 1:
        return arms[0][1]
    return (S.If(st.span, tuple(arms[:-1]), arms[-1][1]),)


def _plain_sum(st: S.Branches, optional, pick) -> tuple:
    """The sum of the branches present; a lone unnamed branch is its statements, in place."""
    chosen = {k: (None if a is None else opt.arms[a][1]) for (k, opt), a in zip(optional, pick)}
    branches = tuple(chosen.get(k, b) for k, b in enumerate(st.branches) if chosen.get(k, b) is not None)
    if len(branches) == 1 and st.fused_name is None:
        return branches[0]
    return (dataclasses.replace(st, branches=branches),)


def _combination_test(optional, pick) -> S.Expr:
    """The condition under which each optional branch takes the arm `pick` gives (or none)."""
    parts: list[S.Expr] = []
    for (_, opt), a in zip(optional, pick):
        tests = [test for test, _ in opt.arms]
        for test in tests[:len(tests) if a is None else a]:
            parts.append(S.Unary(test.span, "not", test))
        if a is not None:
            parts.append(tests[a])
    out = parts[0]
    for part in parts[1:]:
        out = S.BinOp(out.span, "and", out, part)
    return out


def _choose(st: S.If, ctx: Ctx):
    for test, body in st.arms:
        vals = ctx.values(test)
        if vals is None or len({bool(v) for v in vals}) != 1:
            return None
        if vals[0]:
            return body
    return st.orelse or ()


@register("fuse-reparam")
def fuse_pass(build):
    """The deploy form: the fused program, to be elaborated again (with its recipes)."""
    fusion = fuse_reparam(build.program, build.graph)
    return build.but(program=fusion.program, fusion=fusion, graph=None, cost=None, unfused=build)


def fuse_reparam(program: Program, graph: Graph) -> Fusion:
    """The deploy-form program of this build; its fused layers carry their weight recipes."""
    return Driver(program, graph).run()


__all__ = ["Fusion", "Event", "fuse_reparam", "RULES", "literal"]
