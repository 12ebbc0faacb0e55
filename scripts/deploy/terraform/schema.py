"""Terraform provider schemas read from the cdktf prebuilt provider packages, and a check of Terraform JSON against them.

There is no Terraform binary here to run `terraform validate`, but the npm packages
`@cdktf/provider-*` are generated from the providers' schemas: for every resource and data
source, `lib/<name>/index.js` renders each argument in a `*ToHclTerraform` function (block or
attribute, and its shape) and `index.d.ts` marks the optional ones with `?`. This module reads
those two files for the types a configuration uses and reports, per block, what Terraform
would refuse: an unknown argument, a missing required one, a block written as an attribute or
the other way round, a single block given several times, and a `${...}` reference to a
resource, data source, variable or local that nothing declares (or to an attribute its type
does not have).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.stage_config import PROJECT_DIR

# Where `make test` installs the provider packages: npm ci from package-lock.json, into node_modules here.
NODE_DIR = PROJECT_DIR
# Terraform provider name -> the npm package carrying its schema, pinned to the provider releases
# the package targets: aws 5.99.1, random 3.7.2, null 3.2.4.
PROVIDER_PACKAGES: dict[str, tuple[str, str]] = {
    "aws": ("@cdktf/provider-aws", "19.65.1"),
    "random": ("@cdktf/provider-random", "11.1.1"),
    "null": ("@cdktf/provider-null", "10.0.2"),
}

RESOURCE_META = {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection", "dynamic"}
DATA_META = {"count", "for_each", "depends_on", "provider", "lifecycle", "dynamic"}
LIFECYCLE = {
    "create_before_destroy",
    "prevent_destroy",
    "ignore_changes",
    "replace_triggered_by",
    "precondition",
    "postcondition",
}
VARIABLE_ARGUMENTS = {"type", "default", "description", "sensitive", "nullable", "validation", "ephemeral"}
OUTPUT_ARGUMENTS = {"value", "description", "sensitive", "depends_on", "precondition", "ephemeral"}
PROVIDER_META = {"alias", "version"}
# Terraform JSON ignores properties named "//" (comments).
COMMENT = "//"


class SchemaError(Exception):
    """A provider package is missing, of another version, or not shaped as this reader expects."""


# --- the schema ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Argument:
    """One argument of a block: an attribute (simple, list, set, map) or a nested block."""

    name: str
    is_block: bool
    kind: str  # attribute: simple, list, set, map; block: single, object, many, map
    storage: str
    required: bool
    nested: BlockSchema | None = None


@dataclass(frozen=True)
class BlockSchema:
    """The arguments a block accepts, and every attribute a reference may read from it."""

    arguments: dict[str, Argument]
    computed: frozenset[str] = frozenset()

    @property
    def readable(self) -> frozenset[str]:
        """The names a reference may read: the arguments and the attributes the provider computes."""
        return self.computed | frozenset(self.arguments)

    @property
    def required(self) -> list[str]:
        """The names of the arguments Terraform requires."""
        return sorted(name for name, argument in self.arguments.items() if argument.required)


_ATTRIBUTE = re.compile(
    r'(?P<name>"[^"]+"|[A-Za-z_][A-Za-z0-9_]*): \{\s*value: (?P<value>.*?),\s*'
    r'isBlock: (?P<block>true|false),\s*type: "(?P<type>\w+)",\s*storageClassType: "(?P<storage>\w+)",\s*\}',
    re.DOTALL,
)
_FUNCTION = re.compile(r"\bfunction (\w+ToHclTerraform)\(struct\) \{")
_DECLARED_FUNCTION = re.compile(r"export declare function (\w+ToHclTerraform)\(struct\??: ([^)]*)\)")
_INTERFACE = re.compile(r"export interface (\w+)(?: extends [^{]+)? \{(.*?)\n\}", re.DOTALL)
_PROPERTY = re.compile(r"/\*\*((?:(?!\*/).)*)\*/\s*readonly (\w+)(\??):", re.DOTALL)
_ANCHOR = re.compile(r"#([A-Za-z0-9_]+)\}")
_TYPE_BYTES = re.compile(rb"terraformResourceType: '([a-z0-9_]+)'")
_KIND_BYTES = re.compile(rb"extends cdktf\.Terraform(Resource|DataSource)\b")
_READABLE = re.compile(r"(?:Attribute|interpolationForAttribute)\('([A-Za-z0-9_]+)'\)|\(this, \"([A-Za-z0-9_]+)\"")


def _snake(camel: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", camel).lower()


@dataclass
class _Sources:
    """The generated JavaScript and TypeScript declarations of one resource, data source or provider."""

    js: str
    dts: str
    directory: Path
    blocks: dict[str, BlockSchema] = field(default_factory=dict)
    _interfaces: dict[str, str] | None = None

    def hcl_attributes(self, body: str, where: str) -> list[re.Match[str]]:
        entries = list(_ATTRIBUTE.finditer(body))
        # Every entry the generator wrote has exactly one isBlock: if the counts differ, the
        # generated shape changed and this reader would silently miss arguments.
        if len(entries) != body.count("isBlock:"):
            raise SchemaError(f"{self.directory}: read {len(entries)} of {body.count('isBlock:')} arguments of {where}")
        return entries

    def function_body(self, name: str) -> str:
        match = re.search(rf"\bfunction {re.escape(name)}\(struct\) \{{", self.js)
        if not match:
            raise SchemaError(f"{self.directory}: no function {name}")
        # Generated functions close at column 0; an empty struct's has no attributes to filter.
        end = self.js.find("\n}\n", match.end())
        if end < 0:
            raise SchemaError(f"{self.directory}: {name} does not end as expected")
        return self.js[match.end() : end]

    def interfaces(self) -> dict[str, str]:
        if self._interfaces is None:
            self._interfaces = {match.group(1): match.group(2) for match in _INTERFACE.finditer(self.dts)}
        return self._interfaces

    def struct_interfaces(self) -> dict[str, str]:
        """Each *ToHclTerraform function and the interface of the struct it renders."""
        found = {}
        for function, parameter in _DECLARED_FUNCTION.findall(self.dts):
            # The parameter is a union such as "XOutputReference | X" or "X | cdktf.IResolvable".
            names = [name.strip() for name in parameter.split("|")]
            found[function] = next((name for name in names if name in self.interfaces()), names[0])
        return found

    def optional_by_name(self, interface: str) -> dict[str, bool]:
        interfaces = self.interfaces()
        if interface not in interfaces:
            raise SchemaError(f"{self.directory}: no interface {interface} in its declarations")
        optional: dict[str, bool] = {}
        for match in _PROPERTY.finditer(interfaces[interface]):
            anchors = _ANCHOR.findall(match.group(1))
            optional[anchors[-1] if anchors else _snake(match.group(2))] = match.group(3) == "?"
        return optional


def _nested(sources: _Sources, function: str, where: str) -> BlockSchema:
    # Some schemas nest a block in itself (a statement inside a statement): one schema per
    # function, shared, and filled in after it is registered so the recursion ends.
    if function not in sources.blocks:
        schema = sources.blocks[function] = BlockSchema({})
        interface = sources.struct_interfaces()[function]
        schema.arguments.update(_block(sources, sources.function_body(function), interface, where).arguments)
    return sources.blocks[function]


def _block(
    sources: _Sources, body: str, interface: str, where: str, computed: frozenset[str] = frozenset()
) -> BlockSchema:
    optional = sources.optional_by_name(interface)
    declared = sources.struct_interfaces()
    arguments: dict[str, Argument] = {}
    for entry in sources.hcl_attributes(body, where):
        name = entry.group("name").strip('"')
        value, kind, storage = entry.group("value"), entry.group("type"), entry.group("storage")
        nested = None
        if entry.group("block") == "true":
            function = re.search(r"(\w+ToHclTerraform)", value)
            if not function or function.group(1) not in declared:
                raise SchemaError(f"{sources.directory}: block {where}.{name} renders through an unknown function")
            nested = _nested(sources, function.group(1), f"{where}.{name}")
            if "listMapperHcl(" in value:
                kind = "many"
            elif "hashMapperHcl(" in value:
                kind = "map"
            elif kind == "struct":
                kind = "object"
            else:
                # A block the provider allows once (max_items = 1), rendered without a list mapper.
                kind = "single"
        elif kind == "struct":
            kind = "object"
        if name not in optional:
            raise SchemaError(f"{sources.directory}: {where}.{name} has no declaration in {interface}")
        arguments[name] = Argument(name, nested is not None, kind, storage, not optional[name], nested)
    missing = set(optional) - set(arguments)
    if missing:
        raise SchemaError(f"{sources.directory}: {interface} declares {sorted(missing)} that {where} does not render")
    return BlockSchema(arguments, computed)


def _top_level(sources: _Sources, base: str) -> tuple[str, str, BlockSchema]:
    """(terraform type, "resource" | "data" | "provider", schema) of a lib/<name> folder."""
    declaration = re.search(rf"\nclass (\w+) extends cdktf\.Terraform({base})\b", sources.js)
    if not declaration:
        raise SchemaError(f"{sources.directory}: no class extending cdktf.Terraform{base}")
    class_name, kind = declaration.group(1), declaration.group(2)
    end = sources.js.find(f"exports.{class_name} = {class_name};", declaration.end())
    body = sources.js[declaration.end() : end if end > 0 else len(sources.js)]
    terraform_type = re.search(r"terraformResourceType: '([a-z0-9_]+)'", body)
    if not terraform_type:
        raise SchemaError(f"{sources.directory}: {class_name} names no Terraform type")
    start = body.find("synthesizeHclAttributes() {")
    # Methods close at an indentation of four.
    stop = body.find("\n    }\n", start)
    if start < 0 or stop < 0:
        raise SchemaError(f"{sources.directory}: {class_name} has no synthesizeHclAttributes")
    computed = frozenset(name for pair in _READABLE.findall(body) for name in pair if name)
    # The configuration interface is usually <Class>Config, suffixed where that name is taken.
    config = re.search(
        rf"class {class_name} extends[^{{]*\{{.*?constructor\(scope: Construct, id: string, config\??: (\w+)\)",
        sources.dts,
        re.DOTALL,
    )
    interface = config.group(1) if config else f"{class_name}Config"
    schema = _block(sources, body[start:stop], interface, terraform_type.group(1), computed | {"id"})
    role = {"Resource": "resource", "DataSource": "data", "Provider": "provider"}[kind]
    return terraform_type.group(1), role, schema


def _read_folder(directory: Path) -> _Sources:
    files = sorted(directory.rglob("*"))
    js = "\n".join(path.read_text() for path in files if path.suffix == ".js")
    dts = "\n".join(path.read_text() for path in files if path.name.endswith(".d.ts"))
    return _Sources(js, dts, directory)


@dataclass
class ProviderSchema:
    """One provider's schema, read folder by folder as types are asked for."""

    name: str
    package_dir: Path
    _types: dict[tuple[str, str], BlockSchema | None] = field(default_factory=dict)
    _index: dict[tuple[str, str], Path] | None = None

    @property
    def lib(self) -> Path:
        """The folder holding one sub-folder per resource, data source and the provider."""
        return self.package_dir / "lib"

    def _guesses(self, role: str, terraform_type: str) -> list[Path]:
        short = terraform_type.removeprefix(f"{self.name}_").replace("_", "-")
        if role == "data":
            return [self.lib / f"data-{terraform_type.replace('_', '-')}", self.lib / f"data-{short}"]
        return [self.lib / short, self.lib / f"{short}-resource", self.lib / "resource"]

    def _scan(self) -> dict[tuple[str, str], Path]:
        # Folder names are the type's name in most cases only (random_string is string-resource):
        # when a guess misses, find the folder that declares the type.
        if self._index is None:
            self._index = {}
            for directory in sorted(path for path in self.lib.iterdir() if (path / "index.js").exists()):
                text = (directory / "index.js").read_bytes()
                found = _TYPE_BYTES.search(text)
                kind = _KIND_BYTES.search(text)
                if found and kind:
                    role = "data" if kind.group(1) == b"DataSource" else "resource"
                    self._index[(role, found.group(1).decode())] = directory
        return self._index

    def schema(self, role: str, terraform_type: str) -> BlockSchema | None:
        """The schema of a resource or data source type; None if the provider has no such type."""
        key = (role, terraform_type)
        if key not in self._types:
            self._types[key] = None
            base = "DataSource" if role == "data" else "Resource"
            candidates = [path for path in self._guesses(role, terraform_type) if (path / "index.js").exists()]
            candidates += [path for path in [self._scan().get(key)] if path is not None]
            for directory in candidates:
                text = (directory / "index.js").read_text()
                if f"terraformResourceType: '{terraform_type}'" in text and f"extends cdktf.Terraform{base}" in text:
                    self._types[key] = _top_level(_read_folder(directory), base)[2]
                    break
        return self._types[key]

    def provider(self) -> BlockSchema:
        """The provider block's own schema."""
        key = ("provider", self.name)
        if self._types.get(key) is None:
            self._types[key] = _top_level(_read_folder(self.lib / "provider"), "Provider")[2]
        schema = self._types[key]
        assert schema is not None
        return schema


@dataclass
class Schemas:
    """The schemas of every provider a configuration may use."""

    providers: dict[str, ProviderSchema]

    @classmethod
    def load(cls, node_dir: Path = NODE_DIR) -> Schemas:
        """The pinned provider packages installed under node_dir; SchemaError if one is missing or another version."""
        providers = {}
        for provider, (package, version) in PROVIDER_PACKAGES.items():
            package_dir = node_dir / "node_modules" / package
            manifest = package_dir / "package.json"
            if not manifest.exists():
                raise SchemaError(f"{package} is not installed under {node_dir} (make test installs it)")
            installed = json.loads(manifest.read_text()).get("version")
            if installed != version:
                raise SchemaError(f"{package} {installed} is installed under {node_dir}, expected {version}")
            providers[provider] = ProviderSchema(provider, package_dir)
        return cls(providers)

    def provider_of(self, terraform_type: str) -> ProviderSchema | None:
        """The provider whose type names start with terraform_type's prefix."""
        return self.providers.get(terraform_type.split("_", 1)[0])

    def schema(self, role: str, terraform_type: str) -> BlockSchema | None:
        """The schema of a resource or data source type, None if no provider has it."""
        provider = self.provider_of(terraform_type)
        return provider.schema(role, terraform_type) if provider else None


# --- expressions ----------------------------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_OPERATORS = ("==", "!=", "<=", ">=", "&&", "||", "=>", "...", "::")
KEYWORDS = {"for", "in", "if", "true", "false", "null", "else", "endif", "endfor"}


@dataclass(frozen=True)
class Reference:
    """A traversal in an expression: its root name and the names after it (indexes left out)."""

    root: str
    path: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join((self.root, *self.path))


def _template(text: str, start: int, quoted: bool, out: list[list[str]]) -> int:
    """Scan a template from start; append each interpolation's tokens to out; return where it ends."""
    position = start
    while position < len(text):
        char = text[position]
        if quoted and char == "\\":
            position += 2
            continue
        if quoted and char == '"':
            return position + 1
        if text.startswith(("$${", "%%{"), position):
            position += 3
            continue
        if text.startswith(("${", "%{"), position):
            tokens: list[str] = []
            position = _expression(text, position + 2, tokens, out)
            out.append(tokens)
            continue
        position += 1
    if quoted:
        raise ValueError("unterminated string in expression")
    return position


def _expression(text: str, start: int, tokens: list[str], out: list[list[str]]) -> int:
    """Tokenize an expression up to its closing brace; nested templates' tokens go inline."""
    depth = 0
    position = start
    while position < len(text):
        char = text[position]
        if char.isspace() or char == "~":
            position += 1
            continue
        if char == '"':
            tokens.append('"')
            inner: list[list[str]] = []
            position = _template(text, position + 1, True, inner)
            for nested in inner:
                tokens.extend(["${", *nested, "}$"])
            tokens.append('"')
            continue
        if text.startswith("<<", position):
            raise ValueError("heredocs are not read")
        if char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                return position + 1
            depth -= 1
        identifier = _IDENT.match(text, position)
        number = _NUMBER.match(text, position)
        if number:
            tokens.append(number.group())
            position = number.end()
        elif identifier:
            tokens.append(identifier.group())
            position = identifier.end()
        else:
            operator = next((op for op in _OPERATORS if text.startswith(op, position)), char)
            tokens.append(operator)
            position += len(operator)
    raise ValueError("unterminated interpolation")


def _references(tokens: list[str]) -> Iterator[Reference]:
    bound: set[str] = set()
    for index, token in enumerate(tokens):
        if token == "for":
            # for a[, b] in ...: the names up to "in" are the expression's own.
            names = []
            for following in tokens[index + 1 :]:
                if following == "in":
                    break
                names.append(following)
            bound |= {name for name in names if name != ","}
    brackets: list[str] = []
    for index, token in enumerate(tokens):
        if token in ("(", "[", "{"):
            brackets.append(token)
        elif token in (")", "]", "}") and brackets:
            brackets.pop()
        if not _IDENT.fullmatch(token) or token in KEYWORDS or token in bound:
            continue
        before = tokens[index - 1] if index else None
        after = tokens[index + 1] if index + 1 < len(tokens) else None
        if before in (".", "::") or after in ("(", "::"):
            continue
        if brackets and brackets[-1] == "{" and before in ("{", ",") and after in ("=", ":"):
            continue  # an object constructor's key
        path: list[str] = []
        cursor = index + 1
        while cursor < len(tokens):
            if tokens[cursor] == "." and cursor + 1 < len(tokens):
                if _IDENT.fullmatch(tokens[cursor + 1]):
                    path.append(tokens[cursor + 1])
                cursor += 2
            elif tokens[cursor] == "[":
                level = 0
                while cursor < len(tokens):
                    level += {"[": 1, "]": -1}.get(tokens[cursor], 0)
                    cursor += 1
                    if level == 0:
                        break
            else:
                break
        yield Reference(token, tuple(path))


def template_references(text: str) -> list[Reference]:
    """Every reference in the interpolations of a Terraform JSON string."""
    interpolations: list[list[str]] = []
    _template(text, 0, False, interpolations)
    return [reference for tokens in interpolations for reference in _references(tokens)]


def expression_references(text: str) -> list[Reference]:
    """Every reference in a bare expression (depends_on, replace_triggered_by)."""
    tokens: list[str] = []
    _expression(text + "}", 0, tokens, [])
    return list(_references(tokens))


# --- the check ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """Something Terraform would refuse, and where."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class _Scope:
    """What the expressions of a block may refer to besides declared things."""

    where: str
    count: bool = False
    for_each: bool = False
    self_allowed: bool = False
    # Inside a dynamic block's content: the iterator's name (the block's, unless "iterator" says).
    iterators: frozenset[str] = frozenset()


@dataclass
class _Declared:
    """The names a configuration declares: resources and data sources by type, variables, locals."""

    resources: dict[str, set[str]] = field(default_factory=dict)
    data: dict[str, set[str]] = field(default_factory=dict)
    variables: set[str] = field(default_factory=set)
    locals: set[str] = field(default_factory=set)


def _is_expression(value: Any) -> bool:
    return isinstance(value, str) and bool(re.search(r"(?<!\$)\$\{", value))


class _Checker:
    """One walk over a configuration, collecting problems as it goes."""

    def __init__(self, schemas: Schemas, documents: list[dict[str, Any]]):
        self.schemas = schemas
        self.documents = documents
        self.problems: list[Problem] = []
        self.declared = _Declared()
        for document in documents:
            for kind, target in (("resource", self.declared.resources), ("data", self.declared.data)):
                for terraform_type, blocks in document.get(kind, {}).items():
                    target.setdefault(terraform_type, set()).update(blocks)
            self.declared.variables |= set(document.get("variable", {}))
            for locals_block in _as_blocks(document.get("locals", {})):
                self.declared.locals |= set(locals_block)

    def report(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message))

    # arguments and blocks

    def check_block(self, schema: BlockSchema, body: Any, where: str, meta: set[str], scope: _Scope) -> None:
        if not isinstance(body, dict):
            self.report(where, f"a block must be a JSON object, not {type(body).__name__}")
            return
        for name, value in body.items():
            if name == COMMENT:
                continue
            argument = schema.arguments.get(name)
            if argument is not None:
                self.check_argument(argument, value, f"{where}.{name}", scope)
            elif name in meta:
                self.check_meta(schema, name, value, f"{where}.{name}", scope)
            else:
                self.report(where, f"unknown argument {name!r}")
        present = {name for name, value in body.items() if value is not None}
        present |= set(body.get("dynamic", {})) if isinstance(body.get("dynamic"), dict) else set()
        for name in schema.required:
            if name not in present:
                self.report(where, f"required argument {name!r} is missing")

    def check_argument(self, argument: Argument, value: Any, where: str, scope: _Scope) -> None:
        if argument.is_block:
            assert argument.nested is not None
            if argument.kind == "map":
                entries = list(value.values()) if isinstance(value, dict) else [value]
            elif isinstance(value, dict):
                entries = [value]
            elif isinstance(value, list):
                entries = value
            else:
                self.report(where, "is a block: write it as a JSON object (or a list of objects), not a value")
                return
            if argument.kind in ("single", "object") and len(entries) > 1:
                self.report(where, f"is a single block, given {len(entries)} times")
            for index, entry in enumerate(entries):
                self.check_block(argument.nested, entry, f"{where}[{index}]", set(), scope)
            return
        self.check_references(value, where, scope)
        if _is_expression(value) or value is None:
            return
        if argument.storage == "any":
            return
        if argument.kind == "simple" and isinstance(value, (dict, list)):
            self.report(where, f"is an attribute of type {argument.storage}, not a {type(value).__name__}")
        elif argument.kind in ("list", "set") and not isinstance(value, list):
            self.report(where, f"is a {argument.kind} attribute ({argument.storage}), not a {type(value).__name__}")
        elif argument.kind == "map":
            if not isinstance(value, dict):
                self.report(where, f"is a map attribute ({argument.storage}), not a {type(value).__name__}")
            elif argument.storage.endswith("Map") and not argument.storage.endswith("MapMap"):
                for key, item in value.items():
                    if isinstance(item, (dict, list)):
                        self.report(
                            f"{where}.{key}", f"a {argument.storage} holds plain values, not a {type(item).__name__}"
                        )
        elif argument.kind == "object" and not isinstance(value, dict):
            self.report(where, f"is an object attribute, not a {type(value).__name__}")

    def check_meta(self, schema: BlockSchema, name: str, value: Any, where: str, scope: _Scope) -> None:
        if name == "depends_on":
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                self.report(where, "must be a list of references")
                return
            for item in value:
                self.resolve_all(expression_references(item), where, scope)
        elif name == "lifecycle":
            for block in _as_blocks(value):
                for key, item in block.items():
                    if key not in LIFECYCLE:
                        self.report(where, f"unknown lifecycle argument {key!r}")
                    elif key == "ignore_changes" and isinstance(item, list):
                        for attribute in item:
                            root = expression_references(attribute)
                            if root and root[0].root not in schema.arguments:
                                self.report(where, f"ignore_changes names {attribute!r}, not an argument")
                    elif key == "replace_triggered_by" and isinstance(item, list):
                        for reference in item:
                            self.resolve_all(expression_references(reference), where, scope)
                    else:
                        self.check_references(item, f"{where}.{key}", scope)
        elif name == "dynamic":
            if not isinstance(value, dict):
                self.report(where, "must be an object of block names")
                return
            for block_name, generator in value.items():
                argument = schema.arguments.get(block_name)
                if argument is None or not argument.is_block or argument.nested is None:
                    self.report(where, f"dynamic {block_name!r} is not a block of this type")
                    continue
                for entry in _as_blocks(generator):
                    self.check_references(entry.get("for_each"), f"{where}.{block_name}.for_each", scope)
                    iterator = entry.get("iterator", block_name)
                    inner = _Scope(
                        scope.where, scope.count, scope.for_each, scope.self_allowed, scope.iterators | {iterator}
                    )
                    self.check_block(
                        argument.nested, entry.get("content", {}), f"{where}.{block_name}.content", set(), inner
                    )
        elif name in ("provisioner", "connection"):
            self.check_references(value, where, _Scope(scope.where, scope.count, scope.for_each, True))
        else:
            self.check_references(value, where, scope)

    # references

    def check_references(self, value: Any, where: str, scope: _Scope) -> None:
        if isinstance(value, str):
            try:
                references = template_references(value)
            except ValueError as error:
                self.report(where, f"cannot read the expression: {error}")
                return
            self.resolve_all(references, where, scope)
        elif isinstance(value, list):
            for item in value:
                self.check_references(item, where, scope)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key != COMMENT:
                    self.check_references(item, f"{where}.{key}", scope)

    def resolve_all(self, references: Iterable[Reference], where: str, scope: _Scope) -> None:
        for reference in references:
            message = self.resolve(reference, scope)
            if message:
                self.report(where, message)

    def resolve(self, reference: Reference, scope: _Scope) -> str | None:
        root, path = reference.root, reference.path
        first = path[0] if path else None
        if root in scope.iterators:
            return None if first in ("key", "value") else f"{reference}: an iterator has only key and value"
        if root == "var":
            return None if first in self.declared.variables else f"{reference} names no declared variable"
        if root == "local":
            return None if first in self.declared.locals else f"{reference} names no declared local"
        if root == "count":
            return None if scope.count and first == "index" else f"{reference} outside a block with count"
        if root == "each":
            return (
                None if scope.for_each and first in ("key", "value") else f"{reference} outside a block with for_each"
            )
        if root == "path":
            return None if first in ("module", "root", "cwd") else f"{reference} is not a path value"
        if root == "terraform":
            return None if first == "workspace" else f"{reference} is not a terraform value"
        if root == "self":
            return None if scope.self_allowed else f"{reference} outside a provisioner or connection"
        if root == "data":
            if len(path) < 2 or path[1] not in self.declared.data.get(path[0], set()):
                return f"{reference} names no declared data source"
            return self.attribute(self.schemas.schema("data", path[0]), path[2:], reference)
        if root in self.declared.resources:
            if first not in self.declared.resources[root]:
                return f"{reference} names no declared resource"
            return self.attribute(self.schemas.schema("resource", root), path[1:], reference)
        return (
            f"{reference} names nothing declared (no resource of type {root!r}, nor a variable, local or data source)"
        )

    @staticmethod
    def attribute(schema: BlockSchema | None, rest: tuple[str, ...], reference: Reference) -> str | None:
        if schema is None or not rest or rest[0] in schema.readable:
            return None
        return f"{reference}: the type has no attribute {rest[0]!r}"

    # top-level blocks

    def run(self) -> list[Problem]:
        for document in self.documents:
            for role, meta in (("resource", RESOURCE_META), ("data", DATA_META)):
                for terraform_type, blocks in document.get(role, {}).items():
                    schema = self.schemas.schema(role, terraform_type)
                    prefix = "data." if role == "data" else ""
                    for name, body in blocks.items():
                        where = f"{prefix}{terraform_type}.{name}"
                        if schema is None:
                            self.report(where, f"the providers have no {role} type {terraform_type!r}")
                            continue
                        for block in _as_blocks(body):
                            scope = _Scope(where, "count" in block, "for_each" in block)
                            self.check_block(schema, block, where, meta, scope)
            for provider_name, blocks in document.get("provider", {}).items():
                provider = self.schemas.providers.get(provider_name)
                for block in _as_blocks(blocks):
                    where = f"provider.{provider_name}"
                    if provider is None:
                        self.report(where, "is not one of the providers whose schema is known")
                        continue
                    self.check_block(provider.provider(), block, where, PROVIDER_META, _Scope(where))
            for name, body in document.get("variable", {}).items():
                self.check_keys(body, VARIABLE_ARGUMENTS, f"var.{name}", skip_references={"type"})
            for name, body in document.get("output", {}).items():
                self.check_keys(body, OUTPUT_ARGUMENTS, f"output.{name}", required={"value"})
            for locals_block in _as_blocks(document.get("locals", {})):
                self.check_references(locals_block, "locals", _Scope("locals"))
        return self.problems

    def check_keys(
        self,
        body: Any,
        allowed: set[str],
        where: str,
        required: set[str] = frozenset(),
        skip_references: set[str] = frozenset(),
    ) -> None:
        for block in _as_blocks(body):
            for key in set(block) - allowed - {COMMENT}:
                self.report(where, f"unknown argument {key!r}")
            for key in required - set(block):
                self.report(where, f"required argument {key!r} is missing")
            for key, value in block.items():
                if key == "depends_on" and isinstance(value, list):
                    for item in value:
                        self.resolve_all(expression_references(item), where, _Scope(where))
                elif key not in skip_references and key != COMMENT:
                    self.check_references(value, f"{where}.{key}", _Scope(where))


def _as_blocks(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict)]
    return [value] if isinstance(value, dict) else []


def check_configuration(documents: Iterable[dict[str, Any]], schemas: Schemas) -> list[Problem]:
    """What Terraform would refuse in a configuration: its *.tf.json documents, overrides already merged."""
    return _Checker(schemas, list(documents)).run()
