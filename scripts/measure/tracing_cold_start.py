"""Cold-start cost of the tracing library: the X-Ray SDK as the app uses it, against OpenTelemetry behind the same seam.

scripts.measure.bench runs this part too (`make bench`; `python -m scripts.measure.bench --tracing-only` for it
alone), in the Lambda-like environment of its other cold-start figures, against its moto server.

Three comparisons, each variant in fresh interpreters, the variants interleaved in an order that
rotates from run to run, the median of the runs reported:

- Set-up alone. An interpreter imports boto3, which every function of this app does (the
  baseline), then sets up tracing: the X-Ray SDK configured with botocore patched, as
  chalicelib.telemetry.tracing.recorder() does; or the OpenTelemetry SDK with the X-Ray id generator,
  botocore instrumented and an OTLP/HTTP exporter behind a BatchSpanProcessor, as
  chalicelib.telemetry.tracing_otel.provider() does, and the X-Ray Lambda propagator imported.
- The whole app. An interpreter imports the app, sets up its tracing and serves its first
  request, a product read (tenant credentials from STS, the item from DynamoDB, both moto),
  traced and sampled; against the same app with tracing off. The OpenTelemetry variant puts
  chalicelib.telemetry.tracing_otel in chalicelib.telemetry.tracing's place before importing the app, which is the
  migration's whole change to the code.
- Package size. What each library adds to the function's package, beyond what the app needs
  without tracing (requirements.in): the installed files of every distribution it pulls in,
  bytecode caches left out.

The traces must really leave the function: the X-Ray SDK's segments as UDP datagrams to a socket
standing in for Lambda's X-Ray daemon, OpenTelemetry's spans as OTLP/HTTP posts to a loopback
receiver standing in for a collector extension. A run where they did not is an error, not a figure.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from scripts.measure.fresh_interpreter import medians, run

ROOT = Path(__file__).resolve().parents[2]

# What each set-up variant runs after importing boto3.
SET_UPS = {
    "boto3 alone (baseline)": "",
    "X-Ray SDK": "from chalicelib.telemetry import tracing\ntracing.recorder()",
    "OpenTelemetry": (
        "from chalicelib.telemetry import tracing_otel\n"
        "tracing_otel.provider()\n"
        "from opentelemetry.propagators.aws import AwsXRayLambdaPropagator"
    ),
}

SET_UP = """
import json, time
clocks = [(time.perf_counter(), time.process_time())]
import boto3
clocks.append((time.perf_counter(), time.process_time()))
%(set_up)s
clocks.append((time.perf_counter(), time.process_time()))
(wall_0, cpu_0), (wall_1, cpu_1), (wall_2, cpu_2) = clocks
print(json.dumps({"boto3": wall_1 - wall_0, "boto3_cpu": cpu_1 - cpu_0, "set_up": wall_2 - wall_1, "set_up_cpu": cpu_2 - cpu_1}))
"""

# Each whole-app variant: what it runs before importing the app, what sets up its tracing, its environment.
SWAP_TO_OPENTELEMETRY = """
import chalicelib, chalicelib.telemetry.tracing_otel
# As the migration would: `from chalicelib.telemetry import tracing` and `from chalicelib.telemetry.tracing import ...` get this seam.
chalicelib.telemetry.tracing = sys.modules["chalicelib.telemetry.tracing"] = chalicelib.telemetry.tracing_otel
"""


@dataclass(frozen=True)
class AppVariant:
    """One way of running the whole app: code before its import, its tracing's set-up, environment changes."""

    before_import: str
    set_up: str
    environment: tuple[tuple[str, str], ...] = ()


APP_VARIANTS = {
    "tracing off (baseline)": AppVariant("", "", (("TRACING", "off"),)),
    "X-Ray SDK": AppVariant("", "from chalicelib.telemetry import tracing\ntracing.recorder()"),
    "OpenTelemetry": AppVariant(SWAP_TO_OPENTELEMETRY, "chalicelib.telemetry.tracing_otel.provider()"),
}

APP = """
import json, sys, time
clocks = [(time.perf_counter(), time.process_time())]
%(before_import)s
import app
clocks.append((time.perf_counter(), time.process_time()))
%(set_up)s
clocks.append((time.perf_counter(), time.process_time()))
authorizer = {"tenant_id": "tenant-a", "tier": "basic", "scopes": "tenant-api/catalog.read", "principalId": "tenant-a"}
response = app.app(event("/catalog/{product_id}", "/catalog/prod-001", {"product_id": "prod-001"}, authorizer), CONTEXT)
assert response["statusCode"] == 200, response
clocks.append((time.perf_counter(), time.process_time()))
figures = {}
for phase, (wall_0, cpu_0), (wall_1, cpu_1) in zip(("import", "set_up", "first_request"), clocks, clocks[1:]):
    figures[phase], figures[phase + "_cpu"] = wall_1 - wall_0, cpu_1 - cpu_0
print(json.dumps(figures))
"""

# The distributions each tracing library brings, as the migration would list them in requirements.in.
OPENTELEMETRY_REQUIREMENTS = (
    "opentelemetry-sdk",
    "opentelemetry-sdk-extension-aws",
    "opentelemetry-propagator-aws-xray",
    "opentelemetry-instrumentation-botocore",
    "opentelemetry-exporter-otlp-proto-http",
)
XRAY_REQUIREMENT = "aws-xray-sdk"
# Lambda sets these too; OpenTelemetry's Lambda resource detector reads them.
LAMBDA_RESOURCE_ENVIRONMENT = {
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
}


@dataclass
class Receivers:
    """Loopback stand-ins for where each library sends its traces, counting what arrives."""

    xray_address: str
    otlp_endpoint: str
    datagrams: int = 0
    posts: int = 0


@dataclass(frozen=True)
class PackageSize:
    """What a library adds to the function's package: its distributions and their installed bytes."""

    distributions: tuple[str, ...]
    size_bytes: int


@dataclass(frozen=True)
class Figures:
    """Medians of each variant's figures, and each library's package size."""

    runs: int
    set_up: dict[str, dict[str, float]]
    app: dict[str, dict[str, float]]
    sizes: dict[str, PackageSize]


def interleaved(variants: dict[str, Callable[[], dict[str, float]]], runs: int) -> dict[str, dict[str, float]]:
    """Each variant's median figures over runs, the variants taken in an order that rotates every run."""
    names = list(variants)
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for index in range(runs):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(variants[name]())
    return {name: medians(taken) for name, taken in samples.items()}


@contextlib.contextmanager
def receivers() -> Iterator[Receivers]:
    """A UDP socket in the X-Ray daemon's place and an OTLP/HTTP receiver in a collector's, both on loopback."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(0.1)
    received = Receivers(xray_address="", otlp_endpoint="")

    class OtlpReceiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the name http.server dispatches POST to
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.posts += 1
            # An empty ExportTraceServiceResponse: everything accepted.
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), OtlpReceiver)
    stop = threading.Event()

    def count_datagrams() -> None:
        while not stop.is_set():
            try:
                udp.recvfrom(65536)
            except socket.timeout:
                continue
            received.datagrams += 1

    counter = threading.Thread(target=count_datagrams, daemon=True)
    server = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    udp_host, udp_port = udp.getsockname()[:2]
    http_host, http_port = http.server_address[:2]
    received.xray_address = f"{udp_host}:{udp_port}"
    received.otlp_endpoint = f"http://{http_host}:{http_port}/v1/traces"
    counter.start()
    server.start()
    try:
        yield received
    finally:
        stop.set()
        http.shutdown()
        http.server_close()
        counter.join()
        udp.close()


def measure(environment: dict[str, str], runs: int, request_prelude: str) -> Figures:
    """Every figure, in fresh interpreters run in environment; request_prelude defines event() and CONTEXT."""
    with receivers() as received:
        traced = {
            **environment,
            **LAMBDA_RESOURCE_ENVIRONMENT,
            "AWS_XRAY_DAEMON_ADDRESS": received.xray_address,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": received.otlp_endpoint,
        }
        set_up = interleaved(
            {name: _runner(SET_UP % {"set_up": code}, traced) for name, code in SET_UPS.items()},
            runs,
        )
        before = (received.datagrams, received.posts)
        app = interleaved(
            {
                name: _runner(
                    request_prelude + APP % {"before_import": variant.before_import, "set_up": variant.set_up},
                    {**traced, **dict(variant.environment)},
                )
                for name, variant in APP_VARIANTS.items()
            },
            runs,
        )
        # Each traced first request sends its spans before it answers: at least one datagram or post each.
        if received.datagrams - before[0] < runs or received.posts - before[1] < runs:
            raise RuntimeError(
                f"traces did not leave the function: {received.datagrams - before[0]} X-Ray datagrams and"
                f" {received.posts - before[1]} OTLP posts from {runs} first requests of each"
            )
    return Figures(runs=runs, set_up=set_up, app=app, sizes=package_sizes())


def _runner(snippet: str, environment: dict[str, str]) -> Callable[[], dict[str, float]]:
    return lambda: run(snippet, environment)


def runtime_requirements(path: Path = ROOT / "requirements.in") -> list[Requirement]:
    """The function's own top-level requirements (requirements.in: what the lock is made from)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def installed_closure(requirements: Iterable[Requirement]) -> set[str]:
    """The installed distributions the requirements pull in, themselves included, following extras."""
    extras_of: dict[str, set[str]] = {}
    todo = list(requirements)
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        wanted = set(requirement.extras)
        if name in extras_of and wanted <= extras_of[name]:
            continue
        try:
            dependencies = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        extras = extras_of.setdefault(name, set())
        extras.update(wanted)
        for text in dependencies:
            dependency = Requirement(text)
            if dependency.marker is None or any(
                dependency.marker.evaluate({"extra": extra}) for extra in extras | {""}
            ):
                dependency.marker = None
                todo.append(dependency)
    return set(extras_of)


def installed_bytes(distribution: str) -> int:
    """The size of a distribution's installed files, bytecode caches and files outside site-packages left out."""
    total = 0
    for file in metadata.distribution(distribution).files or []:
        if "__pycache__" in file.parts or ".." in file.parts:
            continue
        path = Path(str(file.locate()))
        if path.is_file():
            total += path.stat().st_size
    return total


def package_sizes() -> dict[str, PackageSize]:
    """What each tracing library adds to the package of an app that already has its other requirements."""
    own = runtime_requirements()
    base = installed_closure(r for r in own if canonicalize_name(r.name) != XRAY_REQUIREMENT)
    sizes = {}
    for name, requirements in (
        ("X-Ray SDK", [Requirement(XRAY_REQUIREMENT)]),
        ("OpenTelemetry", [Requirement(text) for text in OPENTELEMETRY_REQUIREMENTS]),
    ):
        added = tuple(sorted(installed_closure(requirements) - base))
        sizes[name] = PackageSize(added, sum(installed_bytes(distribution) for distribution in added))
    return sizes


APP_PHASES = ("import", "set_up", "first_request")


def report(figures: Figures) -> list[str]:
    """The report's lines: set-up alone, the whole app, package size; ratios to the same run's baselines.

    Wall-clock time, and in brackets the interpreter's CPU time, which other work on a busy
    machine does not inflate (moto's, in the bench's process, is not in it either).
    """
    baseline = figures.set_up["boto3 alone (baseline)"]
    xray = figures.set_up["X-Ray SDK"]
    lines = [
        f"tracing library cold start: median of {figures.runs} fresh interpreters per variant, interleaved",
        "  set-up alone, after importing boto3:",
        f"    {'boto3 import (baseline)':<26} {_ms(baseline['boto3'], baseline['boto3_cpu'])}",
    ]
    for name in ("X-Ray SDK", "OpenTelemetry"):
        taken = figures.set_up[name]
        ratios = f"{taken['set_up_cpu'] / baseline['boto3_cpu']:.2f}x boto3's import"
        if name != "X-Ray SDK":
            ratios += f", {taken['set_up_cpu'] / xray['set_up_cpu']:.2f}x X-Ray's"
        lines.append(f"    {name + ' set-up':<26} {_ms(taken['set_up'], taken['set_up_cpu'])}  (CPU: {ratios})")
    lines.append("  the whole app: import, tracing set-up, first request (traced and sampled); ratios of CPU time:")
    off = figures.app["tracing off (baseline)"]
    off_cpu = sum(off[phase + "_cpu"] for phase in APP_PHASES)
    for name, taken in figures.app.items():
        wall = sum(taken[phase] for phase in APP_PHASES)
        cpu = sum(taken[phase + "_cpu"] for phase in APP_PHASES)
        phases = "   ".join(f"{phase.replace('_', ' ')} {taken[phase] * 1000:6.1f}" for phase in APP_PHASES)
        versus = "" if taken is off else f"  ({(cpu - off_cpu) * 1000:+.1f} ms CPU, {cpu / off_cpu:.2f}x)"
        lines.append(f"    {name:<24} {phases}   total {_ms(wall, cpu)}{versus}")
    lines.append("  added to the function's package (installed files, bytecode caches left out):")
    for name, size in figures.sizes.items():
        lines.append(
            f"    {name:<16} {size.size_bytes / 1e6:6.1f} MB in {len(size.distributions)} distributions:"
            f" {', '.join(size.distributions)}"
        )
    xray_size, otel_size = figures.sizes["X-Ray SDK"], figures.sizes["OpenTelemetry"]
    lines.append(
        f"    {'the migration':<16} {(otel_size.size_bytes - xray_size.size_bytes) / 1e6:+6.1f} MB"
        " (OpenTelemetry's in, the X-Ray SDK's out)"
    )
    return lines


def _ms(wall: float, cpu: float) -> str:
    return f"{wall * 1000:6.1f} ms ({cpu * 1000:6.1f} ms CPU)"
