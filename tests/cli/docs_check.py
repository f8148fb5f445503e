#!/usr/bin/env python3
"""docs_check: what README.md and docs/*.md quote of pgxform's output is what it prints.

usage: docs_check.py PGXFORM_BINARY [--keep DIR]
       docs_check.py --self-test PGXFORM_BINARY

The binary runs the tour of the README on the sample migration (sql/, jobs.yaml) in a
database of its own, from the PG* environment (a copy of the database PGXFORM_SAMPLE_TEMPLATE
names when set, which holds the sample loaded already: scripts/test loads it once): init on the legacy schema (getting-started.md),
info, validate and plan before and after migrate, run (its progress lines every 300 ms rather
than every 10 s, so that a fast machine prints them too), status, profile, explain, verify,
rehearse, pause, set and resume, the run again, and a few mistakes (a mistyped command, an
unknown job, a second init into the same folder). What it printed, on stdout and stderr, is
the corpus.

Then every line quoted in an output block of the docs (a fenced block with no language, or
`console` or `json`; `text` marks a block that is no output, such as a diagram) is checked:

- a log line (`08:22:55 info ...`), a message (`pgxform: ...`, `error: ...`, `warning: ...`),
  a table heading (a line of capitalised column names) or a line of the tour's outputs must be
  a line of the corpus, numbers, times and spacing aside; failing that, for the lines of
  outputs the tour cannot provoke (a failed batch, a changed function), every constant
  fragment of it (the words between the numbers, names and quoted values) must be text the
  binary holds, so that a reworded message is caught even where its case is not replayed;
- a JSON key quoted anywhere (`"rows_done":`) must be a key of the JSON the tour printed.

Lines that are illustrations, not output (an example jobs file, SQL), are in blocks with a
language and are not read. A quoted line that no check can place fails the test, with the file
and line. --keep DIR keeps the corpus. --self-test plants wrong lines and expects each to fail.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = ["README.md"] + sorted(
    os.path.join("docs", f) for f in os.listdir(os.path.join(ROOT, "docs")) if f.endswith(".md"))

LOG_PREFIX = re.compile(
    r"^(?:\d{2}:\d{2}:\d{2}(?:\.\d+)?|\d{4}-\d{2}-\d{2}T[\d:.]+[+-]\d{2}:?\d{2})\s+"
    r"(?:debug|info|warning|error)\s+")
NUMBER = re.compile(r"(?<![A-Za-z_])[-+]?\d+(?:[.,:]\d+)*(?:e[-+]?\d+)?(?![A-Za-z_])")
HEADING = re.compile(r"^\s*[A-Z][A-Z%/]+(?:\s{1,}[A-Z][A-Z0-9%/.,]*)+\s*$")
JSON_KEY = re.compile(r'"([a-z_][a-z0-9_]*)"\s*:')


def normalise(line):
    """A line without its timestamp, with every number as N and runs of spaces as one."""
    line = LOG_PREFIX.sub("", line.rstrip())
    line = NUMBER.sub("N", line)
    # A duration's unit follows its size: "310 ms" and "2.8 s" are the same figure.
    line = re.sub(r"\bN(\s*)(?:us|ms|s|min|h|d)\b", r"N", line)
    return re.sub(r"\s+", " ", line).strip()


# Variable parts of a message: numbers, quoted values, key ranges, qualified names, file
# names with lines, host:pid, options with their values.
VARIABLE = re.compile(r"^(?:'.*'|\".*\"|`.*`|\[.*\]|\S*[./:@=]\S*|\S*\d\S*)[,;:)]*$")
# What the server said, quoted after pgxform's own words: not the binary's text.
SERVER_TEXT = re.compile(r"\s(?:ERROR|DETAIL|HINT|CONTEXT|WARNING|NOTICE):\s.*$")


def fragments(line, names):
    """The constant fragments of a message: the runs of its words between its variable parts
    (numbers, quoted values, names the doc gives its tables, jobs and functions), as the
    binary holds them in its text."""
    line = SERVER_TEXT.sub("", LOG_PREFIX.sub("", line.strip()))
    out, run = [], []
    for word in re.split(r"\s+", line):
        bare = word.strip(",;:()'\"`")
        if (not bare or len(bare) == 1 or VARIABLE.match(word) or bare in names or
                bare.lower() in names):
            if run:
                out.append(" ".join(run))
            run = []
            continue
        # Punctuation may end one literal of the binary and start the next: a fragment ends
        # there.
        if word.startswith("(") and run:
            out.append(" ".join(run))
            run = []
        run.append(word)
        if word.rstrip(",;:.").endswith(")"):
            out.append(" ".join(run))
            run = []
    if run:
        out.append(" ".join(run))
    return [f.strip(",;:() ") for f in out if f.strip(",;:() ")]


def names_of(path):
    """The names a doc gives its examples: the lists, jobs, tables, keys and functions of its
    jobs files (`name: order_lines`), and those it declares in a comment
    `<!-- docs_check names: items main -->`. A quoted message may contain them where the
    binary has a variable."""
    text = full = open(os.path.join(ROOT, path), encoding="utf-8").read()
    if not path.endswith(".yaml"):
        text = "\n".join(re.findall(r"```yaml\n(.*?)```", text, re.S))
    names = set(w for n in re.findall(r"<!-- docs_check names: ([^>]*)-->", full) for w in n.split())
    for value in re.findall(r"\b(?:name|table|key|function|after)\s*:\s*\[?([^\n#}]+)", text):
        names.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", value))
    return names - {"pgxform"}


def plurals(fragment):
    """The fragment, and without the s the binary adds to a count's noun ("bisect batch" +
    "es", "job" + "s"), at its first or its last word."""
    words = fragment.split(" ")
    out = [fragment]
    for i in (0, len(words) - 1):
        if re.search(r"[a-z]s$", words[i]):
            out.append(" ".join(words[:i] + [re.sub(r"e?s$", "", words[i])] + words[i + 1:]))
    return out


def split_in_text(fragment, text):
    """Two literals the binary prints one after the other ("the verify query reads " then
    "from the first key of "): the fragment cut in two pieces of three words or more, each
    the binary's; or a count's noun, then the rest ("job" + "s", then " verified in ")."""
    words = fragment.split(" ")
    if any(" ".join(words[:i]) in text and " ".join(words[i:]) in text
           for i in range(3, len(words) - 2)):
        return True
    # A count's noun printed on its own ("job" + "s"), then the rest, of two words or more.
    singular = plurals(words[0])[1:]
    return (len(words) >= 3 and any(in_text(w, text) for w in singular) and
            " ".join(words[1:]) in text)


def in_text(fragment, text):
    if " " in fragment:
        return any(variant in text for variant in plurals(fragment)) or split_in_text(fragment, text)
    return re.search(r"(?<![A-Za-z_])" + re.escape(fragment) + r"(?![A-Za-z_])", text) is not None


SKIPPED_BLOCKS = []


def quoted_lines(path):
    """(line number, text, block language) of each line in an output block of the file."""
    lines = open(os.path.join(ROOT, path), encoding="utf-8").read().split("\n")
    out, lang, inside, skipped = [], None, False, False
    for i, line in enumerate(lines, 1):
        fence = re.match(r"^\s*```(\w*)\s*$", line)
        if fence:
            inside = not inside
            lang = fence.group(1) if inside else None
            # `<!-- docs_check: skip (why) -->` on the line before a block: output the tour does
            # not replay, mostly the server's own text (plans, SQL); counted in the summary.
            skipped = inside and i >= 2 and lines[i - 2].strip().startswith("<!-- docs_check: skip")
            if skipped:
                SKIPPED_BLOCKS.append("%s:%d" % (path, i))
            continue
        if inside and not skipped and lang in ("", "console", "json"):
            out.append((i, line, lang))
    return out


def kind_of(line):
    text = line.strip()
    if not text or text.startswith(("$ ", "...", "#", "pgxform ")) or text == "```":
        return None  # a command typed, not its output (cli.md's synopsis: check_commands)
    if text.count("|") >= 2 or re.match(r"^[-+]+$", text) or text.startswith("->") or \
            "actual time=" in text or re.match(r"^\(\d+ rows?\)$", text):
        return None  # what psql or EXPLAIN prints, not pgxform
    if LOG_PREFIX.match(text):
        return "log"
    if text.startswith(("pgxform: ", "error: ", "warning: ")):
        return "message"
    if HEADING.match(text):
        return "heading"
    return "output"


class Tour:
    """The sample migration in a database of its own, and what the binary printed on it."""

    def __init__(self, binary):
        self.binary = binary
        self.lines = []
        self.json_keys = set()
        self.help = ""
        self.db = "pgxform_docs_%d" % os.getpid()
        self.dir = tempfile.mkdtemp(prefix="pgxform-docs-")

    def psql(self, *args, db="postgres"):
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, *args],
                       check=True, stdout=subprocess.DEVNULL)

    def pgxform(self, *args, expect=None, env=None):
        run_env = dict(os.environ, PGDATABASE=self.db, **(env or {}))
        r = subprocess.run([self.binary, *args], cwd=self.dir, env=run_env,
                           capture_output=True, text=True, timeout=600)
        if expect is not None and r.returncode != expect:
            raise SystemExit("docs_check: pgxform %s exited %d, not %d:\n%s%s" %
                             (" ".join(args), r.returncode, expect, r.stdout, r.stderr))
        for stream in (r.stdout, r.stderr):
            self.lines.extend(stream.split("\n"))
            for line in stream.split("\n"):
                if line.startswith(("{", "[")):
                    try:
                        self.collect_keys(json.loads(line))
                    except ValueError:
                        pass
        return r

    def collect_keys(self, value):
        if isinstance(value, dict):
            for k, v in value.items():
                self.json_keys.add(k)
                self.collect_keys(v)
        elif isinstance(value, list):
            for v in value:
                self.collect_keys(v)

    def run(self):
        shutil.copy(os.path.join(ROOT, "jobs.yaml"), self.dir)
        shutil.copytree(os.path.join(ROOT, "sql"), os.path.join(self.dir, "sql"))
        template = os.environ.get("PGXFORM_SAMPLE_TEMPLATE")
        self.psql("-c", "DROP DATABASE IF EXISTS " + self.db, "-c", "CREATE DATABASE " + self.db +
                  (' TEMPLATE "%s"' % template.replace('"', '""') if template else ""))
        try:
            if template:
                # The sample loaded once by scripts/test (sql/setup_sample.sql): a copy, and
                # the statistics' timestamps, which a copy does not carry, taken again.
                self.psql("-c", "ANALYZE", db=self.db)
            else:
                self.psql("-f", os.path.join(self.dir, "sql", "setup_sample.sql"), db=self.db)
            # getting-started.md: a starting migration from the legacy schema, written into a
            # folder of its own; again (refused: its files exist); a schema that is not there.
            self.pgxform("init", "--schema", "legacy", "--dir", "migration", expect=0)
            self.pgxform("init", "--schema", "legacy", "--dir", "migration", expect=2)
            self.pgxform("init", "--schema", "legasy", "--dir", "elsewhere", expect=2)
            # Before the scripts: the functions do not exist yet.
            self.pgxform("info")
            self.pgxform("validate", expect=2)
            self.pgxform("plan", expect=2)
            self.pgxform("migrate", expect=0)
            self.pgxform("info", expect=0)
            self.pgxform("validate", expect=0)
            self.pgxform("plan", expect=0)
            self.pgxform("plan", "--json", expect=0)
            self.pgxform("rehearse", expect=0)
            self.pgxform("rehearse", "--json", expect=0)
            self.pgxform("status", expect=0)
            # The progress lines the docs quote come every 10 s, and a run on a fast machine
            # may be over before the first: the tour asks for them every 300 ms
            # (PGXFORM_PROGRESS_INTERVAL_MS, docs/cli.md), so that every job that runs longer
            # than that prints its line, whatever the machine.
            self.pgxform("run", expect=0, env={"PGXFORM_PROGRESS_INTERVAL_MS": "300"})
            self.pgxform("status", expect=0)
            self.pgxform("status", "--json", expect=0)
            self.pgxform("profile", expect=0)
            self.pgxform("profile", "--json", expect=0)
            self.pgxform("explain", "customers")
            self.pgxform("verify")
            self.pgxform("run", expect=0)
            self.pgxform("pause", "orders", expect=0)
            self.pgxform("set", "shop_orders", "batch_size=2000", "target_batch_ms=0", expect=0)
            self.pgxform("resume", "--all", expect=0)
            self.pgxform("reset", "analyze_events", expect=0)
            self.pgxform("run", expect=0)
            # After the last run: a runner started later would go to 2 threads.
            self.pgxform("set", "--threads", "2", expect=0)
            # Mistakes.
            self.pgxform("statu", expect=2)
            self.pgxform("reset", "customer", expect=2)
            self.pgxform("status", "-f", "missing.yaml", expect=2)
            self.help = self.pgxform("--help", expect=0).stdout
            self.pgxform(expect=2)
        finally:
            self.psql("-c", "DROP DATABASE IF EXISTS " + self.db)
        return self

    def keep(self, where):
        os.makedirs(where, exist_ok=True)
        with open(os.path.join(where, "corpus.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(self.lines))

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def binary_text(binary):
    """The text the binary holds: its strings, printable runs of 4 characters or more."""
    data = open(binary, "rb").read()
    text = "\n".join(m.decode("utf-8", "replace")
                     for m in re.findall(rb"[\x20-\x7e\t\x80-\xff]{4,}", data))
    # The logger's format strings, also without their {} placeholders: "{} job{} verified in".
    return text + "\n" + re.sub(r"\{[^{}]*\}", "", text)


def check(docs, corpus_lines, json_keys, text):
    """The problems found, as 'file:line: why: text'."""
    corpus = {normalise(line) for line in corpus_lines if line.strip()}
    printed = "\n".join(corpus_lines)
    problems = []
    names = set().union(*(names_of(path) for path in DOCS + ["jobs.yaml"]))
    for path in docs:
        for number, line, lang in quoted_lines(path):
            where = "%s:%d" % (path, number)
            for key in JSON_KEY.findall(line):
                if key not in json_keys:
                    problems.append("%s: JSON key %r is in no JSON the binary printed" %
                                    (where, key))
            kind = kind_of(line)
            if kind is None or lang == "json" or line.strip().startswith(("{", "}")):
                continue
            if normalise(line) in corpus:
                continue
            if kind == "heading":
                problems.append("%s: a heading no command of the tour prints: %s" %
                                (where, line.strip()))
                continue
            # A line the tour did not print (a failed batch, another job's row): its constant
            # words are the binary's.
            missing = [f for f in fragments(line, names)
                       if not in_text(f, text) and not in_text(f, printed)]
            if missing:
                problems.append("%s: not what the binary prints (%s): %s" %
                                (where, "; ".join(repr(m) for m in missing), line.strip()))
    return problems


def check_commands(help_text):
    """Every command that `pgxform --help` lists is in cli.md's synopsis and command table,
    and in the README's command table."""
    commands = re.findall(r"^  ([a-z][a-z-]+)\s", help_text.split("commands:", 1)[-1], re.M)
    cli = open(os.path.join(ROOT, "docs", "cli.md"), encoding="utf-8").read()
    synopsis = cli.split("```", 2)[1]
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    problems = []
    for c in commands:
        if not re.search(r"^pgxform %s\s" % re.escape(c), synopsis, re.M):
            problems.append("docs/cli.md: the synopsis leaves out `pgxform %s`" % c)
        if "[`%s`](#" % c not in cli:
            problems.append("docs/cli.md: the command table leaves out `%s`" % c)
        if "| `pgxform %s" % c not in readme:
            problems.append("README.md: the command table leaves out `pgxform %s`" % c)
    if not commands:
        problems.append("pgxform --help listed no commands")
    return problems


def self_test(binary):
    text = binary_text(binary)
    planted = [
        "pgxform: 1 problem(s) found; nothing was written",
        "08:22:56 info customers: done, 50000 rows moved over in 4 batches",
        "JOB                 STATE     BATCHES        ROWS",
        '{"jobs": [{"job": "orders", "rows_processed": 9}]}',
    ]
    good = ["pgxform: 1 problem(s) found; no job was started"]
    tmp = tempfile.mkdtemp(prefix="pgxform-docs-self-")
    try:
        failures = 0
        for i, line in enumerate(planted + good):
            name = "planted%d.md" % i
            with open(os.path.join(tmp, name), "w") as f:
                f.write("```\n%s\n```\n" % line)
            found = check([os.path.join(tmp, name)], [], {"jobs", "job"}, text)
            expected = i < len(planted)
            if bool(found) != expected:
                print("self-test: %s was %s: %s" %
                      (line, "not caught" if expected else "refused", found))
                failures += 1
        return failures
    finally:
        shutil.rmtree(tmp)


def main(argv):
    if len(argv) >= 2 and argv[0] == "--self-test":
        failures = self_test(argv[1])
        print("docs_check self-test: %s" % ("ok" if not failures else "%d failed" % failures))
        return 1 if failures else 0
    if not argv:
        print(__doc__)
        return 2
    binary = os.path.abspath(argv[0])
    tour = Tour(binary)
    try:
        tour.run()
        if "--keep" in argv:
            tour.keep(argv[argv.index("--keep") + 1])
    finally:
        tour.cleanup()
    problems = check(DOCS, tour.lines, tour.json_keys, binary_text(binary))
    problems += check_commands(tour.help)
    for p in problems:
        print(p)
    checked = sum(1 for d in DOCS for _, line, _ in quoted_lines(d) if kind_of(line))
    print("docs_check: %d quoted lines in %d files, %d problem(s); %d block(s) marked not "
          "replayed: %s" % (checked, len(DOCS), len(problems), len(set(SKIPPED_BLOCKS)),
                            " ".join(sorted(set(SKIPPED_BLOCKS))) or "none"))
    return 1 if problems else 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main(sys.argv[1:]))
