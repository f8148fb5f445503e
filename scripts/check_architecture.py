#!/usr/bin/env python3
"""check_architecture: the rules of docs/architecture.md, checked on runner/ and tests/.

usage: check_architecture.py [--root DIR]
       check_architecture.py --self-test

Each violation is printed as `path:line: rule: what`, and the exit status is 1 when there is
any. The rules:

  layers     runner/ holds one folder per layer, in the order of the table "The layers" of
             docs/architecture.md (lowest first); a source includes headers of its own folder
             or of a lower one, never of a higher one; every folder of runner/ is in the table
             and every folder of the table is in runner/.
  cycles     no two modules (a file pair) include each other, directly or through others.
  state-sql  the state tables' names appear in SQL text (string literals) only under
             runner/state/: the state layer holds every statement on them.
  length     no function in runner/ is longer than 80 lines.
  terminal   only runner/cli/ and runner/output/ write to std::cout, std::cerr, stdout or stderr;
             the others speak through the logger or the std::ostream they are given.
  names      every code name docs/architecture.md cites (`snake_case`, `CamelCase`,
             `folder/file.h`, `file.h: name`) exists in runner/.
  tests      every module of runner/ has its tests in tests/<folder>/<module>_test.cpp, but
             those the table "Modules without a test file of their own" of
             docs/architecture.md lists with the reason.

--self-test copies runner/ and docs/architecture.md into a temporary folder, plants one
violation of each rule there and expects each to be reported (and nothing on the copy as it
was).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

STATE_TABLES = ("job_state", "job_slice", "batch_log", "failed_batches", "change_log",
                "script_history", "schema_version", "control", "capture_slot")
SQL_WORD = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|FROM|JOIN|INTO|WHERE|TABLE)\b")
MAX_FUNCTION_LINES = 80
TERMINAL = re.compile(r"\bstd::(cout|cerr|clog)\b|\b(printf|puts)\s*\(|\bf?printf\s*\(\s*std(out|err)"
                      r"|\bfputs\s*\([^;]*\bstd(out|err)\b|\bwrite\s*\(\s*[12]\s*,")
TERMINAL_FOLDERS = ("cli", "output")


class Source:
    """A source file with its literals and comments blanked out (lines kept)."""

    def __init__(self, path, rel):
        self.path = path
        self.rel = rel
        self.text = open(path, encoding="utf-8", errors="replace").read()
        self.literals = []  # (line, text) of every string literal
        self.code = self._strip(self.text)

    def _strip(self, text):
        out = []
        i, n, line = 0, len(text), 1
        while i < n:
            c = text[i]
            if text.startswith("//", i):
                j = text.find("\n", i)
                j = n if j < 0 else j
                out.append(" " * (j - i))
                i = j
            elif text.startswith("/*", i):
                j = text.find("*/", i + 2)
                j = n if j < 0 else j + 2
                chunk = text[i:j]
                out.append(re.sub(r"[^\n]", " ", chunk))
                line += chunk.count("\n")
                i = j
            elif c == "R" and text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
                m = re.match(r'R"([^(\s]*)\(', text[i:])
                if not m:
                    out.append(c)
                    i += 1
                    continue
                end = text.find(")" + m.group(1) + '"', i)
                end = n if end < 0 else end + len(m.group(1)) + 2
                chunk = text[i:end]
                self.literals.append((line, chunk[len(m.group(0)):-len(m.group(1)) - 2]))
                out.append('""' + re.sub(r"[^\n]", " ", chunk[2:]))
                line += chunk.count("\n")
                i = end
            elif c == '"' or (c == "'" and not (i > 0 and text[i - 1].isalnum())):
                j = i + 1
                while j < n and text[j] != c and text[j] != "\n":
                    j += 2 if text[j] == "\\" else 1
                chunk = text[i:j + 1]
                if c == '"':
                    self.literals.append((line, chunk[1:-1]))
                out.append(c + " " * (len(chunk) - 2) + c if len(chunk) >= 2 else chunk)
                i = j + 1
            else:
                if c == "\n":
                    line += 1
                out.append(c)
                i += 1
        return "".join(out)

    def includes(self):
        for number, line in enumerate(self.text.split("\n"), 1):
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if m:
                yield number, m.group(1)


def layer_table(doc_text):
    """The folders of the table under '## The layers', lowest first."""
    m = re.search(r"^## The layers\n(.*?)(?=^## )", doc_text, re.S | re.M)
    if not m:
        return None
    folders = []
    for row in m.group(1).split("\n"):
        cell = re.match(r"\|\s*`([a-z_]+)/`\s*\|", row)
        if cell:
            folders.append(cell.group(1))
    return folders


def untested_table(doc_text):
    m = re.search(r"^### Modules without a test file of their own\n(.*?)(?=^#)", doc_text,
                  re.S | re.M)
    if not m:
        return set()
    return set(re.findall(r"^\|\s*`([a-z_/]+)`\s*\|", m.group(1), re.M))


def functions(source):
    """(first line, length, head) of every function body at namespace or class level."""
    lines = source.code.split("\n")
    head = re.compile(r"\)\s*(const|override|noexcept|final|\s)*(->\s*[\w:<>,\s*&]+)?\s*(:\s*.*)?\{\s*$")
    control = re.compile(r"^\s*(if|for|while|switch|catch|else|do)\b|\]\s*\(|=\s*\[|^\s*\[|return\s*\[")
    stack, in_fn = [], False
    for i, line in enumerate(lines):
        for ch in line:
            if ch == "{":
                if not in_fn and head.search(line) and not control.search(line):
                    stack.append(("fn", i, line.strip()[:60]))
                    in_fn = True
                else:
                    stack.append(("blk", i, ""))
            elif ch == "}" and stack:
                kind, start, name = stack.pop()
                if kind == "fn":
                    in_fn = False
                    yield start + 1, i - start + 1, name


def check(root):
    problems = []

    def say(path, line, rule, what):
        problems.append(f"{path}:{line}: {rule}: {what}")

    runner = os.path.join(root, "runner")
    doc_path = os.path.join(root, "docs", "architecture.md")
    doc = open(doc_path, encoding="utf-8").read()
    order = layer_table(doc)
    if not order:
        say("docs/architecture.md", 1, "layers", "no table under '## The layers'")
        return problems
    rank = {folder: i for i, folder in enumerate(order)}
    on_disk = sorted(d for d in os.listdir(runner) if os.path.isdir(os.path.join(runner, d)))
    for folder in on_disk:
        if folder not in rank:
            say(f"runner/{folder}", 1, "layers", "a folder docs/architecture.md's layers do not list")
    for folder in order:
        if folder not in on_disk:
            say("docs/architecture.md", 1, "layers", f"lists runner/{folder}/, which does not exist")

    sources = {}
    for folder in on_disk:
        for dirpath, _, names in os.walk(os.path.join(runner, folder)):
            for name in sorted(names):
                if name.endswith((".h", ".cpp")):
                    path = os.path.join(dirpath, name)
                    rel = os.path.relpath(path, root)
                    sources[rel] = Source(path, rel)

    # layers, and the module graph for cycles
    graph = {}
    for rel, src in sources.items():
        folder = rel.split(os.sep)[1]
        module = os.path.splitext(os.path.relpath(rel, "runner"))[0]
        graph.setdefault(module, set())
        for line, target in src.includes():
            parts = target.split("/")
            if len(parts) != 2:
                say(rel, line, "layers", f'#include "{target}" is not folder/file.h')
                continue
            if not os.path.exists(os.path.join(runner, target)):
                continue  # generated or a library's header
            if parts[0] not in rank:
                continue
            if folder in rank and rank[parts[0]] > rank[folder]:
                say(rel, line, "layers",
                    f'{folder}/ includes "{target}" of {parts[0]}/, a higher layer')
            other = os.path.splitext(target)[0]
            if other != module:
                graph[module].add((other, rel, line))
    seen_cycles = set()
    state = {}

    def visit(module, path):
        state[module] = 1
        for other, rel, line in sorted(graph.get(module, ())):
            if state.get(other) == 1:
                cycle = path[path.index(other):] + [other] if other in path else [module, other]
                key = frozenset(cycle)
                if key not in seen_cycles:
                    seen_cycles.add(key)
                    say(rel, line, "cycles", " -> ".join(cycle))
            elif other in graph and state.get(other) is None:
                visit(other, path + [other])
        state[module] = 2

    for module in sorted(graph):
        if state.get(module) is None:
            visit(module, [module])

    table_word = re.compile(r"\b(" + "|".join(STATE_TABLES) + r")\b")
    for rel, src in sources.items():
        folder = rel.split(os.sep)[1]
        if folder != "state":
            for line, lit in src.literals:
                if table_word.search(lit) and (SQL_WORD.search(lit) or table_word.fullmatch(lit.strip())):
                    say(rel, line, "state-sql",
                        f"SQL on the state table {table_word.search(lit).group(1)} outside runner/state/")
        if rel.endswith(".cpp"):
            for line, length, head in functions(src):
                if length > MAX_FUNCTION_LINES:
                    say(rel, line, "length", f"{length} lines (at most {MAX_FUNCTION_LINES}): {head}")
        if folder not in TERMINAL_FOLDERS:
            for number, code_line in enumerate(src.code.split("\n"), 1):
                m = TERMINAL.search(code_line)
                if m:
                    say(rel, number, "terminal",
                        f"writes to the terminal ({m.group(0).strip()}) outside cli/ and output/")

    # names cited by the doc
    corpus = "\n".join(src.text for src in sources.values())
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", corpus))
    in_code = False
    for number, line in enumerate(doc.split("\n"), 1):
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        for span in re.findall(r"`([^`]+)`", line):
            for name in cited_names(span):
                if "/" in name or name.endswith((".h", ".cpp")):
                    candidates = [name] if "/" in name else [
                        rel for rel in sources if os.path.basename(rel) == name]
                    if not any(os.path.exists(os.path.join(root, "runner", c)) or
                               os.path.exists(os.path.join(root, c)) for c in candidates):
                        say("docs/architecture.md", number, "names", f"cites {name}, which does not exist")
                elif name not in words:
                    say("docs/architecture.md", number, "names", f"cites `{name}`, which runner/ does not have")

    # tests beside every module
    exempt = untested_table(doc)
    modules = sorted({os.path.splitext(os.path.relpath(rel, "runner"))[0] for rel in sources})
    for module in modules:
        folder, name = module.split("/", 1)
        test = os.path.join(root, "tests", folder, name + "_test.cpp")
        if module not in exempt and not os.path.exists(test):
            say(f"runner/{module}.h" if os.path.exists(os.path.join(runner, module + ".h"))
                else f"runner/{module}.cpp", 1, "tests",
                f"no tests/{folder}/{name}_test.cpp (or a row in the doc's untested table)")
    for module in sorted(exempt):
        if module not in modules:
            say("docs/architecture.md", 1, "tests", f"lists `{module}` as untested: no such module")
    return problems


IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*(\(\))?$")
NOT_CODE = {"pgxform"}


def cited_names(span):
    """The code names in a `span` of the doc: identifiers with an underscore or a capital inside,
    file names and folder/file paths. Words of prose, commands and SQL are not checked."""
    span = span.strip()
    if re.match(r"^[a-z_]+/[a-z_]+\.(h|cpp)$", span) or re.match(r"^[a-z_]+\.(h|cpp)$", span):
        return [span]
    m = re.match(r"^([a-z_]+\.h): ([A-Za-z_][A-Za-z0-9_:]*)(\(\))?$", span)
    if m:
        return [m.group(1), m.group(2).split("::")[-1]]
    if IDENTIFIER.match(span) and span not in NOT_CODE:
        name = span.split("(")[0].split("::")[-1]
        if "_" in name.strip("_") or re.search(r"[a-z][A-Z]", name) or re.match(r"^[A-Z][a-z]+[A-Z]", name):
            return [name]
    return []


def self_test():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        def fresh():
            for d in ("runner", "docs", "tests"):
                shutil.rmtree(os.path.join(tmp, d), ignore_errors=True)
            shutil.copytree(os.path.join(root, "runner"), os.path.join(tmp, "runner"))
            os.makedirs(os.path.join(tmp, "docs"))
            shutil.copy(os.path.join(root, "docs", "architecture.md"), os.path.join(tmp, "docs"))
            shutil.copytree(os.path.join(root, "tests"), os.path.join(tmp, "tests"),
                            ignore=shutil.ignore_patterns("*.sh", "*.py", "corpus"))

        fresh()
        clean = check(tmp)
        if clean:
            failures.append("the unplanted copy is not clean:\n  " + "\n  ".join(clean))

        def plant(rule, path, text, mode="a"):
            fresh()
            full = os.path.join(tmp, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, mode, encoding="utf-8") as f:
                f.write(text)
            found = [p for p in check(tmp) if f": {rule}: " in p]
            if not found:
                failures.append(f"a planted {rule} violation in {path} was not reported")
            else:
                print(f"self-test: {rule}: caught {found[0]}")

        plant("layers", "runner/base/errors.cpp", '\n#include "engine/batch_runner.h"\n')
        fresh()
        for path, target in (("base/text_check.cpp", "base/errors.h"),
                             ("base/errors.cpp", "base/text_check.h")):
            with open(os.path.join(tmp, "runner", path), "a", encoding="utf-8") as f:
                f.write(f'\n#include "{target}"\n')
        if not any(": cycles: " in p for p in check(tmp)):
            failures.append("a planted include cycle (errors <-> text_check) was not reported")
        else:
            print("self-test: cycles: caught errors <-> text_check")
        plant("state-sql", "runner/engine/batch_runner.cpp",
              '\nstatic const char* k_planted = "SELECT last_key FROM job_state";\n')
        plant("length", "runner/base/errors.cpp",
              "\nint planted_long_function() {\n" + "  int x = 0;\n" * 90 + "  return 0;\n}\n")
        plant("terminal", "runner/engine/batch_runner.cpp",
              '\nvoid planted_print() { std::cout << "hello"; }\n')
        plant("names", "docs/architecture.md",
              "\nThe planted `no_such_function_anywhere` is cited here.\n")
        fresh()
        os.makedirs(os.path.join(tmp, "runner", "planted_folder"))
        with open(os.path.join(tmp, "runner", "planted_folder", "x.h"), "w") as f:
            f.write("#pragma once\n")
        if not any(": layers: " in p and "planted_folder" in p for p in check(tmp)):
            failures.append("a folder missing from the doc's layers was not reported")
        else:
            print("self-test: layers: caught a folder the doc does not list")
        plant("tests", "runner/base/planted_module.h", "#pragma once\n")
    if failures:
        print("\n".join(failures))
        return 1
    print("self-test: every planted violation was caught")
    return 0


def main(argv):
    if "--self-test" in argv:
        return self_test()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if "--root" in argv:
        root = argv[argv.index("--root") + 1]
    problems = check(root)
    for p in problems:
        print(p)
    print(f"check_architecture: {len(problems)} violation(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
