"""Rules the code base keeps (issues 13, 23): short functions in hct/, one load_model, no import cycle, one owner
of each idea."""

import ast
import re

from tests.paths import REPO

LIBRARY = REPO / "hct"
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, ast.Module]:
    trees = {}
    for path in sorted(LIBRARY.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        trees[name] = ast.parse(path.read_text(), filename=str(path))
    return trees


def test_no_function_in_the_library_is_longer_than_80_lines():
    long = []
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {length} lines")
    assert not long, long


def test_there_is_one_load_model():
    found = []
    for folder in (LIBRARY, REPO / "app", REPO / "pages"):
        for path in folder.rglob("*.py"):
            tree = ast.parse(path.read_text())
            found += [
                f"{path.relative_to(REPO)}:{node.lineno}"
                for node in ast.walk(tree)
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "load_model"
            ]
    assert found == ["hct/models/checkpoints.py:" + found[0].split(":")[1]] if found else False, found


def _executed(tree: ast.AST):
    """The nodes of ``tree`` that run when the module runs: ``if TYPE_CHECKING:`` blocks left out."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            yield from (n for child in node.orelse for n in (child, *_executed(child)))
            continue
        yield node
        yield from _executed(node)


def _imports(module: str, tree: ast.Module, known: set[str]) -> set[str]:
    """The hct modules ``module`` imports, at the top or inside functions (``from package import
    submodule`` imports the submodule; the package above any module is imported anyway)."""
    found = set()
    for node in _executed(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [n for n in submodules if n in known]
            if len(names) < len(submodules):
                names.append(node.module)
        else:
            continue
        found |= {n for n in names if n in known and n != module}
    return found


def test_the_library_has_no_import_cycle():
    trees = _modules()
    known = set(trees)
    # a package's __init__ re-exports its modules; importing the package is importing what it holds
    graph = {name: _imports(name, tree, known) for name, tree in trees.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt) :] + [nxt]) if nxt in path else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, cycles


# The library's layers, lowest first (README, "Architecture"). A module belongs to the layer whose longest prefix
# matches its name; it may import from its own layer and the layers below. The command line (``hct/__main__.py``,
# every ``cli.py``) sits above them all.
LAYERS = (
    ("foundation", ("hct", "hct.lazy", "hct.errors", "hct.io", "hct.paths", "hct.reports")),
    ("runtime", ("hct.runtime",)),
    ("data vocabulary", ("hct.data.records", "hct.data.options")),
    ("one image", ("hct.data.image",)),
    ("data sets", ("hct.data", "hct.data.sets", "hct.data.phantom", "hct.data.pacs")),
    ("models", ("hct.models",)),
    ("evaluation", ("hct.eval",)),
    ("training", ("hct.train",)),
    ("explain inputs", ("hct.explain.options", "hct.explain.inputs")),
    (
        "ERF and attribution",
        ("hct.explain.erf", "hct.explain.attribution", "hct.explain.attention_maps", "hct.explain.gmic"),
    ),
    ("display", ("hct.explain.display",)),
    ("explanations", ("hct.explain",)),
    ("command line", ("hct.__main__",)),
)


def _layer(module: str) -> int:
    """The index in ``LAYERS`` of ``module``'s layer (a package's facade ``__init__`` is its package's)."""
    if module.endswith(".cli"):
        return len(LAYERS) - 1
    best = max(
        (
            (len(prefix), rank)
            for rank, (_, prefixes) in enumerate(LAYERS)
            for prefix in prefixes
            if module == prefix or (prefix != "hct" and module.startswith(prefix + "."))
        ),
        default=None,
    )
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best[1]


def test_no_module_imports_from_a_layer_above_it():
    """A lower layer never imports a higher one, not even inside a function: ``hct.data.image`` knows nothing of
    data sets, ``hct.models`` nothing of explanations, and a sub-layer imports its modules, not the package's
    facade above it (``from hct.data import ...`` is for the layers above ``hct.data``)."""
    trees = _modules()
    known = set(trees)
    upward = [
        f"{module} ({LAYERS[_layer(module)][0]}) imports {target} ({LAYERS[_layer(target)][0]})"
        for module, tree in trees.items()
        for target in sorted(_imports(module, tree, known))
        if _layer(target) > _layer(module)
    ]
    assert not upward, upward


def _calls(folders=("hct", "app", "pages")):
    """``(path, call node)`` of every call in the library and the app."""
    for folder in folders:
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Call):
                    yield path.relative_to(REPO).as_posix(), node


# Calls that write a whole file to the path they are given: the index of that argument (or one of DESTINATION_KEYWORDS)
WRITERS = {
    "to_csv": 0,
    "to_parquet": 0,
    "to_json": 0,
    "to_excel": 0,
    "to_pickle": 0,
    "savefig": 0,
    "save": 0,
    "savez": 0,
    "savez_compressed": 0,
    "savetxt": 0,
    "write_html": 0,
    "write_image": 0,
    "save_as": 0,
    "dcmwrite": 0,
    "save_file": 1,
    "write_table": 1,
}
DESTINATION_KEYWORDS = {"path_or_buf", "path", "fname", "filename", "fp", "f", "file", "where", "excel_writer"}
OPENERS = {"open", "ZipFile", "FileHandler"}  # write a whole file when their mode has "w" or "x"
OWN_SAVERS = {"cache"}  # receivers whose .save is the project's own, written through atomic_write (GradientCache)


def _is_buffer(node: ast.AST) -> bool:
    """A call that makes an in-memory file (``io.BytesIO()``, ``io.StringIO()``)."""
    return isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in (
        "BytesIO",
        "StringIO",
    )


def _writes_a_file(call: ast.Call, buffers: set[str]) -> bool:
    """Whether ``call`` writes a whole file at a path (not into one of the in-memory ``buffers``)."""
    func = call.func
    name = getattr(func, "id", getattr(func, "attr", None))
    receiver = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
    if name in ("write_text", "write_bytes"):
        where = getattr(func, "value", None)
    elif name in OPENERS:
        modes = [
            m
            for m in (*call.args[:2], *(k.value for k in call.keywords if k.arg == "mode"))
            if isinstance(m, ast.Constant) and isinstance(m.value, str) and re.fullmatch(r"[rwxabt+]+(:\w*)?", m.value)
        ]
        if not any(set("wx") & set(m.value) for m in modes):
            return False
        where = call.args[0] if call.args and call.args[0] not in modes else getattr(func, "value", None)
    elif name in WRITERS and not (name == "save" and receiver.split(".")[-1] in OWN_SAVERS):
        index = 1 if name == "save" and receiver == "torch" else WRITERS[name]
        where = (
            call.args[index]
            if len(call.args) > index
            else next((k.value for k in call.keywords if k.arg in DESTINATION_KEYWORDS), None)
        )
    else:
        return False
    return where is not None and not _is_buffer(where) and not (isinstance(where, ast.Name) and where.id in buffers)


def _whole_file_writes(tree: ast.AST, buffers: frozenset[str] = frozenset()):
    """The calls in ``tree`` that write a whole file in place: what a function given to ``atomic_write`` writes (its
    temporary) and writes into a function's in-memory buffers are left out."""
    if isinstance(tree, (ast.FunctionDef, ast.AsyncFunctionDef)):
        bound = [(t, n.value) for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets]
        bound += [(i.optional_vars, i.context_expr) for n in ast.walk(tree) if isinstance(n, ast.With) for i in n.items]
        buffers = buffers | {t.id for t, value in bound if isinstance(t, ast.Name) and _is_buffer(value)}
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "atomic_write":
            for part in (node.func, *node.args[:1]):
                yield from _whole_file_writes(part, buffers)
            continue
        if isinstance(node, ast.Call) and _writes_a_file(node, buffers):
            yield node
        yield from _whole_file_writes(node, buffers)


def test_one_writer_of_files():
    """Files are written whole or not at all, by one owner, ``hct.io.atomic_write`` (a temporary in the target's
    folder, renamed over it). Outside ``hct/io.py`` nothing in the library or the app
    - renames a file (``os.replace``, ``os.rename``, ``shutil.move``, ``Path.rename(target)``/``Path.replace(target)``)
      or makes a temporary;
    - writes a whole file in place, where a reader or a crash could meet half of it: ``Path.write_text``/``write_bytes``,
      ``open(path, "w"/"x")``, ``np.save*``, ``DataFrame.to_csv(path)`` and the like, ``savefig(path)``, PIL's
      ``Image.save(path)``, ``torch.save``, plotly's ``write_html``/``write_image``, pydicom's ``save_as``/``dcmwrite``,
      safetensors' ``save_file``, pyarrow's ``write_table``.

    Writing into an in-memory buffer (``io.BytesIO``) is not writing a file, and a function given to ``atomic_write``
    writes its temporary. Appends (``open(path, "a")``: ``metrics.jsonl``, a job's log, the PACS access log) are not
    whole-file writes and stay: lines are added at the end of a file that its readers expect to grow, often by another
    process (the training job's output) or by several threads; rewriting a copy and renaming it at every line would cost
    the whole file each time and drop what another writer appended meanwhile."""
    banned = {
        ("os", "replace"),
        ("os", "rename"),
        ("os", "renames"),
        ("shutil", "move"),
        ("tempfile", "mkstemp"),
        ("tempfile", "NamedTemporaryFile"),
    }
    found = []
    for path, call in _calls():
        func = call.func
        if path == "hct/io.py" or not isinstance(func, ast.Attribute):
            continue
        module_call = isinstance(func.value, ast.Name) and (func.value.id, func.attr) in banned
        path_rename = func.attr in ("rename", "replace") and len(call.args) == 1 and not call.keywords
        if module_call or path_rename:
            found.append(f"{path}:{call.lineno} {ast.unparse(func)}")
    for folder in ("hct", "app", "pages"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path != REPO / "hct" / "io.py":
                tree = ast.parse(path.read_text(), filename=str(path))
                found += [
                    f"{path.relative_to(REPO)}:{call.lineno} {ast.unparse(call.func)}"
                    for call in _whole_file_writes(tree)
                ]
    assert not found, f"write files through hct.io.atomic_write instead: {found}"


def test_the_library_logs_and_only_the_command_line_prints():
    """``print`` (and writes to ``sys.stdout``/``sys.stderr``) only in ``hct/__main__.py`` and ``hct/*/cli.py``;
    the rest of the library reports through ``logging``."""
    found = []
    for path, call in _calls(("hct",)):
        if path == "hct/__main__.py" or path.endswith("/cli.py"):
            continue
        func = call.func
        printed = isinstance(func, ast.Name) and func.id == "print"
        written = (
            isinstance(func, ast.Attribute)
            and func.attr == "write"
            and isinstance(func.value, ast.Attribute)
            and isinstance(func.value.value, ast.Name)
            and func.value.value.id == "sys"
        )
        if printed or written:
            found.append(f"{path}:{call.lineno}")
    assert not found, f"use logging.getLogger(__name__) instead: {found}"


def test_no_page_calls_torch():
    """Pages and the app's modules draw and call the library; torch is the library's (``hct.runtime.devices`` for
    device memory). A type hint may name it under ``if TYPE_CHECKING:``."""
    found = []
    for folder in ("app", "pages"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in _executed(ast.parse(path.read_text())):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                if any(name == "torch" or name.startswith(("torch.", "torchvision")) for name in names):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not found, f"call the library (hct) instead of torch: {found}"


def _called_outside(names: set[str], owner: str) -> list[str]:
    """Calls of the functions ``names`` (by their name) anywhere in the library and the app but ``owner``."""
    return [
        f"{path}:{call.lineno} {call.func.id}"
        for path, call in _calls()
        if isinstance(call.func, ast.Name) and call.func.id in names and path != owner
    ]


def test_one_explain_pipeline():
    """Drawing and writing an explained image has one owner, ``hct.explain.explanation`` (``explain`` ->
    ``Explanation``): the command line, the reading view and the PACS results go through it."""
    found = _called_outside(
        {"overlay_picture", "region_picture", "secondary_capture", "readable"}, "hct/explain/explanation.py"
    )
    assert not found, f"use hct.explain.Explanation instead: {found}"


def test_one_data_set_dispatcher():
    """The data set adapters are called only through their registry (``hct.data.sets.adapters.ADAPTERS``, which
    ``check_data`` dispatches to): no second dispatcher on format names."""
    found = _called_outside(
        {
            "scan_cbis_ddsm",
            "scan_cbis_ddsm_jpeg",
            "find_jpeg_release",
            "scan_vindr_mammo",
            "scan_cmmd",
            "read_optimam",
            "verify_records",
        },
        "hct/data/sets/adapters.py",
    )
    assert not found, f"add an adapter to hct.data.sets.adapters.ADAPTERS instead: {found}"


def _names(folders=("hct", "app", "pages")):
    """``(path, node)`` of every name and attribute read in the library and the app."""
    for folder in folders:
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, (ast.Name, ast.Attribute)):
                    yield path.relative_to(REPO).as_posix(), node


def test_one_loader_reads_weights():
    """Model loading has one owner, ``hct.models.checkpoints.load_model``: only it reads a checkpoint's
    weights (``read_weights``), and only ``hct.models.card`` opens a safetensors file."""
    owners = {"read_weights": "hct/models/checkpoints.py", "load_file": "hct/models/card.py"}
    found = [
        f"{path}:{call.lineno} {ast.unparse(call.func)}"
        for path, call in _calls()
        if (name := getattr(call.func, "id", getattr(call.func, "attr", None))) in owners and path != owners[name]
    ]
    assert not found, f"load models with hct.models.checkpoints.load_model instead: {found}"


def test_a_models_identity_is_made_in_hct_models():
    """A model's identity (architecture, label, checkpoint sha256, colour) is its ``ModelRef``, made where
    the model is loaded: outside ``hct/models/`` nothing reads ``MODEL_SPECS`` (to recover an architecture or
    colour from a name) or builds a ``ModelRef`` field by field (``ModelRef.of``/``ref_of`` make them)."""
    found = [
        f"{path}:{node.lineno} MODEL_SPECS"
        for path, node in _names()
        if not path.startswith("hct/models/") and getattr(node, "id", getattr(node, "attr", None)) == "MODEL_SPECS"
    ]
    found += [
        f"{path}:{call.lineno} {ast.unparse(call.func)}(...)"
        for path, call in _calls()
        if not path.startswith("hct/models/") and isinstance(call.func, ast.Name) and call.func.id == "ModelRef"
    ]
    assert not found, f"take the model's ModelRef (hct.models.ref.ref_of) instead: {found}"


def _is_preamble(node: ast.stmt) -> bool:
    """An import, the docstring, or a constant (every name assigned is ALL_CAPS)."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return True
    if isinstance(node, ast.Expr):
        return isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
    names = [n for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return bool(names) and all(n.id.isupper() for n in names)


def test_pages_define_first_and_draw_below():
    """A page (pages/*.py) is imports and constants, then its functions, then the script that draws: no
    function or class is defined after the first top-level statement that draws or computes."""
    found = []
    for path in sorted((REPO / "pages").glob("*.py")):
        body = ast.parse(path.read_text(), filename=str(path)).body
        first = next(
            (
                i
                for i, node in enumerate(body)
                if not _is_preamble(node)
                and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            ),
            len(body),
        )
        found += [
            f"{path.relative_to(REPO)}:{node.lineno} {node.name} (the script starts at line {body[first].lineno})"
            for statement in body[first:]
            for node in ast.walk(statement)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        ]
    assert not found, f"define a page's functions above its script: {found}"
