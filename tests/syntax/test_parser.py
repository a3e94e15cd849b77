"""Parsing: text to surface AST, positions, and the grammar's shape."""

import pytest

from tdxproof.diagnostics import PolicyError
from tdxproof.source import SourceFile
from tdxproof.syntax import ast as A
from tdxproof.syntax.grammar import parser
from tdxproof.syntax.parser import parse


def p(text: str) -> A.PolicyFile:
    return parse(SourceFile.from_text("t.tdx", text))


def test_grammar_is_lalr_without_conflicts():
    assert parser().options.parser == "lalr"
    assert parser().options.strict


def test_a_per_cpu_variable_keeps_its_binder_and_initialiser():
    (var,) = p("var online[cpu c]: bool = c == 0 || any @kvm;").items
    assert var == A.VarDecl("online", False, A.IndexBinder(A.TypeName("cpu"), "c"), A.TypeName("bool"),
                            A.Binary("||", A.Binary("==", A.Name("c"), A.IntLit(0)), A.AnyLit()), "kvm")
    assert (var.span.line, var.span.col) == (1, 5)


def test_quantifiers_bind_tighter_on_the_right_of_an_implication():
    (inv,) = p("invariant all-online-capable at quiescent: t -> forall cpu c: online[c] -> lp[c];").items
    assert inv.name == "all-online-capable" and inv.observe == "quiescent"
    assert inv.expr == A.Binary("->", A.Name("t"), A.Quant("forall", "c", A.Binary(
        "->", A.Index(A.Name("online"), A.Name("c")), A.Index(A.Name("lp"), A.Name("c")))))


def test_statements_of_a_function():
    (fn,) = p("""
        fn f(cpu c) -> int @kvm_intel {
            let r = g(c) in cpuhp[c];
            kvm_usage_count++;
            if may fail "hw" { return -EIO; } else { r = 1; }
            for cpuhp_state s in A .. B { break; }
            for cpuhp_state s2 in B downto A { }
            pick cpu d where d != 0 { ipi d { h(); } }
            atomic "cmpxchg" { await x == 0 waits for holders(l); hold l, read; }
            check p-q: x;
            return r;
        }""").items
    assert fn.module == "kvm_intel" and fn.ret == A.TypeName("int")
    kinds = [type(s).__name__ for s in fn.body]
    assert kinds == ["Let", "Assign", "MayFail", "ForRange", "ForRange", "Pick", "Atomic", "Check", "Return"]
    assert fn.body[0].in_ctx == A.InCtx("cpuhp", A.Name("c"))
    assert fn.body[1].op == "++"
    assert fn.body[4].down is True
    assert fn.body[6].body[0].waits == (A.Call(A.Name("holders"), (A.Name("l"),)),)


def test_property_names_may_contain_hyphens_but_expressions_still_subtract():
    items = p("expect no-dead-lock holds; const X = 3; var y: int = X-1;").items
    assert items[0] == A.ExpectDecl("no-dead-lock", "holds")
    assert items[2].init == A.Binary("-", A.Name("X"), A.IntLit(1))


def test_lock_classes_actors_kthreads_and_config():
    items = p("""
        lockclass mutex { field f: bool = false; acquire(read) fn l(self) { } release fn u(self) { } }
        lock kvm_lock: mutex @kvm;
        kthread cpuhp[cpu c] lockdep_held cpu_hotplug_lock;
        actor vm[2] repeat { }
        actor once on cpu 1 { }
        config inject: bool = true;
        set inject = false;
    """).items
    cls, lock, kt, vm, once, cfg, st = items
    assert [f.role for f in cls.fns] == ["acquire", "release"] and cls.fns[0].mode == "read"
    assert lock.module == "kvm" and kt.lockdep_held == ("cpu_hotplug_lock",)
    assert (vm.copies, vm.repeat) == (2, 0) and once.repeat is None and once.on_cpu == A.IntLit(1)
    assert cfg.name == "inject" and st.value == A.BoolLit(False)


@pytest.mark.parametrize("text", ["fn f( {", "var x: = 1;", "actor { }", "expect x maybe;"])
def test_syntax_errors_are_policy_errors_with_positions(text):
    with pytest.raises(PolicyError) as exc:
        p(text)
    (d,) = exc.value.diagnostics
    assert d.code.startswith("E1") and d.span.path == "t.tdx" and d.span.line >= 1
