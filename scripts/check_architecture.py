#!/usr/bin/env python3
"""check_architecture: the rules of docs/architecture.md, checked on runner/ and tests/.

usage: check_architecture.py [--root DIR]
       check_architecture.py --self-test

Each violation is printed as `path:line: rule: what`, and the exit status is 1 when there is
any. The rules:

  layers      runner/ holds one folder per layer, in the order of the table "The layers" of
              docs/architecture.md (lowest first); a source includes headers of its own folder
              or of a lower one, never of a higher one, always as "folder/file.h"; every folder
              of runner/ is in the table and every folder of the table is in runner/.
  cycles      no two modules (a file pair) include each other, directly or through others.
  state-sql   the state tables' names (every table state/*.sql creates, and schema_version)
              appear in SQL text (a string literal holding an SQL keyword, or the bare name)
              only under runner/state/: the state layer holds every statement on them.
  length      no function in runner/ (sources and headers) is longer than 80 lines.
  terminal    only runner/cli/ and runner/output/ write to the terminal (std::cout, std::cerr,
              std::clog, stdout, stderr, printf, puts, perror, the descriptors 1 and 2); the
              others speak through the logger or the std::ostream they are given.
  names       every code name docs/architecture.md cites (`snake_case`, `CamelCase`,
              `folder/file.h`, `file.h: name`, paths from the root) exists: in runner/, or in
              the tests, scripts and CMake files around it (a test binary, a fixture).
  tests       every module of runner/ has its tests in tests/<folder>/<module>_test.cpp (pure)
              or tests/<folder>/<module>_db_test.cpp (against PostgreSQL), but those the table
              "Modules without a test file of their own" of docs/architecture.md lists with the
              reason; and every test file of tests/<folder>/ is named after a module of
              runner/<folder>/, so that a topic file ("hardening_test.cpp") cannot come back.
  test-names  no TEST_CASE name holds a ';': ctest's discovery splits such a name into two
              entries whose filters match no test, and the test never runs.

What it is: a heuristic over the text, kept simple. It strips comments and string literals
before looking at code (so a "std::cout" in a message is no violation), finds functions by
a line that ends in ") ... {" at the top of a brace nesting (lambdas and control statements
are not functions), and finds SQL by keywords in upper case. SQL built by pasting fragments
that split a table's name from every keyword would slip past state-sql: fill_sql
(base/sql_text.h) and whole statements are the rule that makes that rare.

--self-test copies runner/, state/, tests/ and docs/architecture.md into a temporary folder,
plants one violation of each rule there (two of some) and expects each plant to add a report
of its rule to those of the copy as it was; it prints the violation it caught for each.
"""
import os
import re
import shutil
import sys
import tempfile

FIXED_STATE_TABLES = ("schema_version",)
SQL_WORD = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|FROM|JOIN|INTO|WHERE|TABLE|SET|VALUES|"
                      r"RETURNING|TRUNCATE|ALTER|CREATE|DROP|GRANT|REVOKE|LOCK)\b")
MAX_FUNCTION_LINES = 80
TERMINAL = re.compile(r"\bstd::w?(cout|cerr|clog)\b|\b(printf|puts|putchar|perror)\s*\("
                      r"|\bstd(out|err)\b|\bSTD(OUT|ERR)_FILENO\b|\bwrite\s*\(\s*[12]\s*,")
TERMINAL_FOLDERS = ("cli", "output")
TEST_FOLDERS_NOT_MODULES = ("support", "fuzz")


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
    m = re.search(r"^### Modules without a test file of their own\n(.*?)(?=^#|\Z)", doc_text,
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


def state_tables(root):
    """The state tables: schema_version and every table that state/*.sql creates."""
    tables = set(FIXED_STATE_TABLES)
    folder = os.path.join(root, "state")
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if name.endswith(".sql"):
            text = open(os.path.join(folder, name), encoding="utf-8").read()
            tables.update(re.findall(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?@schema@\.(\w+)",
                                     text, re.I))
    return sorted(tables)


class Checker:
    def __init__(self, root):
        self.root = root
        self.runner = os.path.join(root, "runner")
        self.problems = []
        self.doc = open(os.path.join(root, "docs", "architecture.md"), encoding="utf-8").read()
        self.sources = {}

    def say(self, path, line, rule, what):
        self.problems.append(f"{path}:{line}: {rule}: {what}")

    def run(self):
        order = layer_table(self.doc)
        if not order:
            self.say("docs/architecture.md", 1, "layers", "no table under '## The layers'")
            return self.problems
        self.rank = {folder: i for i, folder in enumerate(order)}
        self.on_disk = sorted(d for d in os.listdir(self.runner)
                              if os.path.isdir(os.path.join(self.runner, d)))
        for folder in self.on_disk:
            if folder not in self.rank:
                self.say(f"runner/{folder}", 1, "layers",
                         "a folder docs/architecture.md's layers do not list")
        for folder in order:
            if folder not in self.on_disk:
                self.say("docs/architecture.md", 1, "layers",
                         f"lists runner/{folder}/, which does not exist")
        for folder in self.on_disk:
            for dirpath, _, names in os.walk(os.path.join(self.runner, folder)):
                for name in sorted(names):
                    if name.endswith((".h", ".cpp")):
                        path = os.path.join(dirpath, name)
                        rel = os.path.relpath(path, self.root)
                        self.sources[rel] = Source(path, rel)
        self.check_layers_and_cycles()
        self.check_sources()
        self.check_names()
        self.check_tests()
        return self.problems

    def check_layers_and_cycles(self):
        graph = {}
        for rel, src in self.sources.items():
            folder = rel.split(os.sep)[1]
            module = os.path.splitext(os.path.relpath(rel, "runner"))[0]
            graph.setdefault(module, set())
            for line, target in src.includes():
                parts = target.split("/")
                if len(parts) != 2:
                    self.say(rel, line, "layers", f'#include "{target}" is not folder/file.h')
                    continue
                if not os.path.exists(os.path.join(self.runner, target)):
                    continue  # generated or a library's header
                if parts[0] not in self.rank:
                    continue
                if folder in self.rank and self.rank[parts[0]] > self.rank[folder]:
                    self.say(rel, line, "layers",
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
                        self.say(rel, line, "cycles", " -> ".join(cycle))
                elif other in graph and state.get(other) is None:
                    visit(other, path + [other])
            state[module] = 2

        for module in sorted(graph):
            if state.get(module) is None:
                visit(module, [module])

    def check_sources(self):
        table_word = re.compile(r"\b(" + "|".join(state_tables(self.root)) + r")\b")
        for rel, src in self.sources.items():
            folder = rel.split(os.sep)[1]
            if folder != "state":
                for line, lit in src.literals:
                    table = table_word.search(lit)
                    if table and (SQL_WORD.search(lit) or table_word.fullmatch(lit.strip(' ."'))):
                        self.say(rel, line, "state-sql",
                                 f"SQL on the state table {table.group(1)} outside runner/state/")
            for line, length, head in functions(src):
                if length > MAX_FUNCTION_LINES:
                    self.say(rel, line, "length",
                             f"{length} lines (at most {MAX_FUNCTION_LINES}): {head}")
            if folder not in TERMINAL_FOLDERS:
                for number, code_line in enumerate(src.code.split("\n"), 1):
                    m = TERMINAL.search(code_line)
                    if m:
                        self.say(rel, number, "terminal",
                                 f"writes to the terminal ({m.group(0).strip()}) outside cli/ and "
                                 "output/")

    def check_names(self):
        # The code a name may be in: runner/, and the tests, scripts and CMake files around it
        # (a test binary, a fixture, a label).
        texts = [src.text for src in self.sources.values()]
        for folder, suffixes in (("tests", (".cpp", ".h", ".txt")), ("scripts", ("",)),
                                 ("cmake", (".cmake",)), ("", ("CMakeLists.txt",))):
            base = os.path.join(self.root, folder)
            if not os.path.isdir(base):
                continue
            for dirpath, _, names in os.walk(base) if folder else [(base, None, os.listdir(base))]:
                for name in names:
                    path = os.path.join(dirpath, name)
                    # Not this checker: its self-test's planted names are in it.
                    if (os.path.isfile(path) and name.endswith(suffixes) and "corpus" not in path
                            and name != "check_architecture.py"):
                        texts.append(open(path, encoding="utf-8", errors="replace").read())
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", "\n".join(texts)))
        in_code = False
        for number, line in enumerate(self.doc.split("\n"), 1):
            if line.startswith("```"):
                in_code = not in_code
                continue
            if in_code:
                continue
            for span in re.findall(r"`([^`]+)`", line):
                for name in cited_names(span):
                    if "/" in name or name.endswith((".h", ".cpp")):
                        if not self.path_exists(name):
                            self.say("docs/architecture.md", number, "names",
                                     f"cites {name}, which does not exist")
                    elif name not in words:
                        self.say("docs/architecture.md", number, "names",
                                 f"cites `{name}`, which the code does not have")

    def path_exists(self, name):
        """A path the doc cites: from the root, from runner/, or a file name of runner/."""
        if "/" in name:
            return any(os.path.exists(os.path.join(self.root, base, name.rstrip("/")))
                       for base in ("", "runner"))
        return any(os.path.basename(rel) == name for rel in self.sources)

    def check_tests(self):
        exempt = untested_table(self.doc)
        modules = sorted({os.path.splitext(os.path.relpath(rel, "runner"))[0]
                          for rel in self.sources})
        tests = os.path.join(self.root, "tests")
        for module in modules:
            folder, name = module.split("/", 1)
            found = [os.path.exists(os.path.join(tests, folder, name + suffix))
                     for suffix in ("_test.cpp", "_db_test.cpp")]
            if module not in exempt and not any(found):
                header = os.path.exists(os.path.join(self.runner, module + ".h"))
                self.say(f"runner/{module}.h" if header else f"runner/{module}.cpp", 1, "tests",
                         f"no tests/{folder}/{name}_test.cpp or {name}_db_test.cpp (or a row in "
                         "the doc's untested table)")
        for module in sorted(exempt):
            if module not in modules:
                self.say("docs/architecture.md", 1, "tests",
                         f"lists `{module}` as untested: no such module")
        for folder in sorted(os.listdir(tests)) if os.path.isdir(tests) else []:
            if folder in TEST_FOLDERS_NOT_MODULES or not os.path.isdir(os.path.join(tests, folder)):
                continue
            for name in sorted(os.listdir(os.path.join(tests, folder))):
                if not name.endswith(".cpp"):
                    continue
                rel = f"tests/{folder}/{name}"
                module = re.sub(r"(_db)?_test\.cpp$", "", name)
                if module == name or f"{folder}/{module}" not in modules:
                    self.say(rel, 1, "tests",
                             f"not named after a module of runner/{folder}/ "
                             "(<module>_test.cpp or <module>_db_test.cpp)")
                self.check_test_names(rel)

    def check_test_names(self, rel):
        src = Source(os.path.join(self.root, rel), rel)
        for m in re.finditer(r"\bTEST_CASE\s*\(", src.code):
            line = src.code.count("\n", 0, m.start()) + 1
            # The name: the adjacent literals that open the macro's arguments, before the tags.
            head = src.text[m.end():src.text.find("{", m.end())]
            name = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', head.split('"[')[0]))
            if ";" in name:
                self.say(rel, line, "test-names",
                         f"'{name}' holds a ';': ctest would split it into entries that run "
                         "no test")


def check(root):
    return Checker(root).run()


IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*(\(\))?$")
NOT_CODE = {"pgxform"}


def cited_names(span):
    """The code names in a `span` of the doc: identifiers with an underscore or a capital inside,
    file names and folder/file paths. Words of prose, commands and SQL are not checked."""
    span = span.strip()
    if re.match(r"^([a-z_]+/)+[a-z_.]+\.(h|cpp|py|sql|sh)$", span) or \
            re.match(r"^[a-z_]+\.(h|cpp)$", span):
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
            for d in ("runner", "docs", "tests", "state", "scripts"):
                shutil.rmtree(os.path.join(tmp, d), ignore_errors=True)
            for d in ("runner", "state", "scripts"):
                shutil.copytree(os.path.join(root, d), os.path.join(tmp, d))
            os.makedirs(os.path.join(tmp, "docs"))
            shutil.copy(os.path.join(root, "docs", "architecture.md"), os.path.join(tmp, "docs"))
            shutil.copytree(os.path.join(root, "tests"), os.path.join(tmp, "tests"),
                            ignore=shutil.ignore_patterns("corpus"))

        fresh()
        # What the copy reports as it is (the main run fails on it): only what a plant adds
        # counts as caught.
        baseline = set(check(tmp))
        if baseline:
            print(f"self-test: the tree has {len(baseline)} violation(s) of its own; "
                  "each plant must add one")

        def expect(rule, where, what=None):
            found = [p for p in check(tmp) if p not in baseline and f": {rule}: " in p and
                     (what is None or what in p)]
            if not found:
                failures.append(f"a planted {rule} violation ({where}) was not reported")
            else:
                print(f"self-test: {rule}: caught {found[0]}")

        def plant(rule, path, text, what=None):
            fresh()
            full = os.path.join(tmp, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "a", encoding="utf-8") as f:
                f.write(text)
            expect(rule, path, what)

        plant("layers", "runner/base/errors.cpp", '\n#include "engine/batch_runner.h"\n')
        fresh()
        for path, target in (("base/text_check.cpp", "base/errors.h"),
                             ("base/errors.cpp", "base/text_check.h")):
            with open(os.path.join(tmp, "runner", path), "a", encoding="utf-8") as f:
                f.write(f'\n#include "{target}"\n')
        expect("cycles", "errors <-> text_check")
        plant("state-sql", "runner/engine/batch_runner.cpp",
              '\nstatic const char* k_planted = "SELECT last_key FROM job_state";\n')
        plant("state-sql", "runner/commands/status_command.cpp",
              '\nstatic const char* k_planted = "UPDATE @schema@.control SET paused = true";\n',
              "control")
        plant("length", "runner/base/errors.cpp",
              "\nint planted_long_function() {\n" + "  int x = 0;\n" * 90 + "  return 0;\n}\n")
        plant("length", "runner/base/errors.h",
              "\ninline int planted_long_inline() {\n" + "  int x = 0;\n" * 90 + "  return 0;\n}\n")
        plant("terminal", "runner/engine/batch_runner.cpp",
              '\nvoid planted_print() { std::cout << "hello"; }\n')
        plant("terminal", "runner/state/state_store.cpp",
              '\nvoid planted_print() { fputs("hello", stderr); }\n', "stderr")
        plant("names", "docs/architecture.md",
              "\nThe planted `no_such_function_anywhere` is cited here.\n", "no_such_function")
        plant("names", "docs/architecture.md",
              "\nThe planted `tests/base/no_such_test.cpp` is cited here.\n", "no_such_test")
        fresh()
        os.makedirs(os.path.join(tmp, "runner", "planted_folder"))
        with open(os.path.join(tmp, "runner", "planted_folder", "x.h"), "w") as f:
            f.write("#pragma once\n")
        expect("layers", "runner/planted_folder/", "planted_folder")
        plant("tests", "runner/base/planted_module.h", "#pragma once\n")
        plant("tests", "tests/engine/hardening_test.cpp", "// a topic file\n", "hardening_test")
        plant("test-names", "tests/base/sql_text_test.cpp",
              '\nTEST_CASE("a planted name; split in two by ctest") {}\n')
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
