"""The ``pythonapp`` command line: validate, render, crd, operator, dev.

A thin layer over the pure modules: it reads files (bounded, see :mod:`.yamlio`), finds the
PythonApps in them (:func:`.validation.find_pythonapps`), validates them, asks :mod:`.advice`
for warnings, prints results and maps problems to exit codes. It never prints a traceback for
bad input: every problem is one line, ``FILE: NAMESPACE/NAME: FIELD.PATH: message`` for a
PythonApp, ``FILE: document N: message`` for a document that is not one, ``FILE: message`` for
a file that cannot be read as YAML (``CHECK_HELP`` below is the user's version of this).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from pydantic import ValidationError

from . import __version__
from .advice import advise
from .api.crd import crd, policy_crd
from .api.models import DNS1123_LABEL, PythonApp
from .api.policy import POLICY_KIND, PythonAppPolicySpec, policy_from
from .api.validation import find_pythonapps, format_path, validate_document
from .platformpolicy import route_defaults as policy_route_defaults
from .platformpolicy import violations, with_defaults
from .render import render
from .routing import RouteDefaults, RouteOptionError, Routing, defaults_from
from .yamlio import MAX_ALIAS_NODES, MAX_BYTES, MAX_DEPTH, YamlError, decode, dump_all, load_all

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2

CHECK_HELP = f"""\
Every PythonApp is checked wherever it sits: each document of a multi-document
stream (---), and each item of a `kind: List` (what `kubectl get -o yaml`
prints), of a PythonAppList or of any other *List with items, Lists in Lists
too. Other kinds are skipped.

Exit 1, with one line per problem on stderr:
  FILE: NAMESPACE/NAME: FIELD.PATH: message
      an invalid PythonApp
  FILE: document N: message
      a document that is not a Kubernetes object: a top-level YAML sequence,
      a scalar, a mapping without kind
  FILE: no PythonApp found ...
      the file holds no PythonApp (only other kinds, or nothing): a gate that
      checked nothing must not pass; --allow-empty accepts such files
  FILE: message
      unreadable, not UTF-8, not YAML, over {MAX_BYTES >> 20} MiB, nested over {MAX_DEPTH}
      levels, aliases expanding past {MAX_ALIAS_NODES} nodes (a YAML bomb)
Warnings, which leave the exit code alone unless --strict:
  FILE: NAMESPACE/NAME: FIELD.PATH: warning: message
      valid but risky: one replica, a worker without probes, no CPU request...
Exit 0 when every PythonApp is valid. Never a traceback.
"""


def _read(path: str) -> bytes:
    """At most one byte more than the reader accepts: a huge file or a device is never slurped."""
    if path == "-":
        return sys.stdin.buffer.read(MAX_BYTES + 1)
    with open(path, "rb") as stream:
        return stream.read(MAX_BYTES + 1)


@dataclass
class Checked:
    """The outcome of checking files: the valid apps, and how many lines of each kind."""

    apps: list[PythonApp] = field(default_factory=list)
    errors: int = 0
    warnings: int = 0


def _no_app_message(documents: int, other_kinds: list[str]) -> str:
    if not documents:
        return "no PythonApp found: the file holds no YAML document"
    if not other_kinds:
        return "no PythonApp found: its Lists are empty"
    counts = Counter(other_kinds)
    # a kind is the file's own text: escape what would break the one-line-per-problem output
    shown = {k: k if k.isprintable() else ascii(k) for k in counts}
    kinds = ", ".join(f"{shown[k]} x{n}" if n > 1 else shown[k] for k, n in counts.items())
    return f"no PythonApp found (only {kinds}): this command checks PythonApps"


def _check_file(
    path: str,
    source: str,
    checked: Checked,
    err: TextIO,
    allow_empty: bool,
    *,
    policy: PythonAppPolicySpec | None,
) -> None:
    def report(line: str, warning: bool = False) -> None:
        print(line, file=err)
        if warning:
            checked.warnings += 1
        else:
            checked.errors += 1

    try:
        data = _read(path)
    except OSError as exc:
        report(f"{source}: cannot read: {exc.strerror or exc}")
        return
    try:
        documents = load_all(decode(data))
    except YamlError as exc:
        report(f"{source}: {exc}")
        return
    found = find_pythonapps(documents)
    for doc_problem in found.problems:
        report(doc_problem.format(source))
    if not found.apps and not found.problems and not allow_empty:
        report(f"{source}: {_no_app_message(len(documents), found.other_kinds)}")
    for doc in found.apps:
        app, problems = validate_document(doc)
        if app is not None:
            # advice on the app as it would run: a policy's default CPU request is a request
            problems = (violations(app, policy) if policy else []) + advise(
                with_defaults(app, policy)
            )
            checked.apps.append(app)
        for problem in problems:
            report(problem.format(source), warning=problem.warning)


def check_files(
    paths: Sequence[str],
    err: TextIO,
    *,
    allow_empty: bool = False,
    policy: PythonAppPolicySpec | None = None,
) -> Checked:
    """Validate every PythonApp in every file; one line per problem or warning to ``err``.
    With ``policy``, an app that breaks one of its rules is a problem too."""
    checked = Checked()
    for path in paths:
        source = "<stdin>" if path == "-" else path
        try:
            _check_file(path, source, checked, err, allow_empty, policy=policy)
        except Exception as exc:  # a bug must fail the gate, in one line, never pass it
            print(
                f"{source}: internal error, please report it: {type(exc).__name__}: {exc}",
                file=err,
            )
            checked.errors += 1
    return checked


def _failed(checked: Checked, strict: bool) -> bool:
    return checked.errors > 0 or (strict and checked.warnings > 0)


class PolicyFileError(ValueError):
    """A ``--policy`` file that holds no usable PythonAppPolicy; the message says why."""


def load_policy(path: str | None) -> PythonAppPolicySpec | None:
    """The spec of the one PythonAppPolicy in ``path`` (``--policy``; None: no option)."""
    if path is None:
        return None
    source = "<stdin>" if path == "-" else path
    try:
        documents = load_all(decode(_read(path)))
    except OSError as exc:
        raise PolicyFileError(f"{source}: cannot read: {exc.strerror or exc}") from None
    except YamlError as exc:
        raise PolicyFileError(f"{source}: {exc}") from None
    found = [d for d in documents if isinstance(d, dict) and d.get("kind") == POLICY_KIND]
    if len(found) != 1:
        raise PolicyFileError(
            f"{source}: must hold exactly one {POLICY_KIND} (found {len(found)}): the cluster "
            "has one, named cluster"
        )
    try:
        return policy_from(found[0]).spec
    except ValidationError as exc:
        lines = [
            f"{source}: {POLICY_KIND}: {format_path(tuple(e['loc']))}: {e['msg']}"
            for e in exc.errors(include_url=False)
        ]
        raise PolicyFileError("\n".join(lines)) from None


def _policy_or_report(args: argparse.Namespace) -> tuple[bool, PythonAppPolicySpec | None]:
    try:
        return True, load_policy(args.policy)
    except PolicyFileError as exc:
        print(f"pythonapp {args.command}: --policy: {exc}", file=sys.stderr)
        return False, None


def cmd_validate(args: argparse.Namespace) -> int:
    ok, policy = _policy_or_report(args)
    if not ok:
        return EXIT_USAGE
    checked = check_files(args.files, sys.stderr, allow_empty=args.allow_empty, policy=policy)
    if _failed(checked, args.strict):
        return EXIT_INVALID
    warnings = f", {checked.warnings} warning(s)" if checked.warnings else ""
    print(f"{len(checked.apps)} PythonApp(s) valid{warnings}", file=sys.stderr)
    return EXIT_OK


def cmd_render(args: argparse.Namespace) -> int:
    ok, policy = _policy_or_report(args)
    if not ok:
        return EXIT_USAGE
    try:
        routing = Routing(policy_route_defaults(route_defaults(args), policy))
    except RouteOptionError as exc:
        print(f"pythonapp render: {exc}", file=sys.stderr)
        return EXIT_USAGE
    checked = check_files([args.file], sys.stderr, policy=policy)
    if _failed(checked, args.strict):
        return EXIT_INVALID
    sys.stdout.write(
        dump_all(
            obj
            for app in checked.apps
            for obj in render(with_defaults(app, policy), routing=routing)
        )
    )
    return EXIT_OK


def cmd_crd(args: argparse.Namespace) -> int:
    sys.stdout.write(dump_all([policy_crd() if args.policy else crd()]))
    return EXIT_OK


def namespace_name(value: str) -> str:
    """``--namespace``: an exact namespace name; kopf's patterns ("team-*", "!x") would need a
    cluster-wide Namespace watch, which the namespaced installation does not grant."""
    if not re.match(DNS1123_LABEL, value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a namespace name (exact names only, no patterns)"
        )
    return value


def lease_name(value: str) -> str:
    """``--leader-election-id``: the Lease's name (a DNS-1123 subdomain)."""
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a valid Lease name (DNS-1123)")
    if len(value) > 253:
        raise argparse.ArgumentTypeError(f"{value!r} is longer than 253 characters")
    return value


#: the environment variables the route options fall back to (the operator's Deployment)
ROUTE_ENV = {
    "gateway": "PYTHONAPP_GATEWAY",
    "ingress_class": "PYTHONAPP_INGRESS_CLASS",
    "route_api": "PYTHONAPP_ROUTE_API",
}


def route_defaults(args: argparse.Namespace) -> RouteDefaults:
    """The platform's defaults for spec.expose from ``--gateway``, ``--ingress-class`` and
    ``--route-api``, else their environment variables (:data:`ROUTE_ENV`). The one place
    they are read: the platform policy will fill :class:`.routing.RouteDefaults` later."""
    values = {
        key: getattr(args, key, None) or os.environ.get(env) for key, env in ROUTE_ENV.items()
    }
    return defaults_from(values["gateway"], values["ingress_class"], values["route_api"])


def add_route_options(p: argparse.ArgumentParser) -> None:
    """The route options ``render`` and ``operator`` share (spec.expose, :mod:`.routing`)."""
    p.add_argument(
        "--gateway",
        metavar="NAMESPACE/NAME",
        help="the Gateway HTTPRoutes attach to (spec.expose.class names another Gateway in its "
        "namespace); without one, exposed apps get Ingresses ($PYTHONAPP_GATEWAY)",
    )
    p.add_argument(
        "--ingress-class",
        metavar="NAME",
        help="the IngressClass of Ingresses whose app names none (default: the cluster's "
        "default class; $PYTHONAPP_INGRESS_CLASS)",
    )
    p.add_argument(
        "--route-api",
        choices=("auto", "ingress"),
        help="auto (default): an HTTPRoute where the cluster serves the Gateway API (render: "
        "assumes it does) and a Gateway is set, else an Ingress; ingress: always an Ingress "
        "($PYTHONAPP_ROUTE_API)",
    )


def add_policy_option(p: argparse.ArgumentParser, *, render: bool = False) -> None:
    """``--policy FILE``: the platform policy (a PythonAppPolicy) offline, as in the cluster."""
    what = (
        "apply its defaults (resources, imagePullSecrets, routes; the route options above win) "
        "and refuse"
        if render
        else "also refuse"
    )
    p.add_argument(
        "--policy",
        metavar="FILE",
        help=f"a PythonAppPolicy (the platform policy, e.g. `kubectl get pythonapppolicy "
        f"cluster -o yaml`): {what} apps that break its rules, with the admission policy's "
        "messages",
    )


def non_negative(value: str) -> int:
    """An integer >= 0 (``--max-rollouts``)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative (0 means no bound)")
    return number


def cmd_operator(args: argparse.Namespace) -> int:
    # kopf is imported only when the operator runs
    from .controller.runner import run_operator  # noqa: PLC0415

    try:
        routes = route_defaults(args)
    except RouteOptionError as exc:
        print(f"pythonapp operator: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return run_operator(
        route_defaults=routes,
        namespaces=args.namespace,
        all_namespaces=args.all_namespaces,
        health=args.health,
        verbose=args.verbose,
        workers=args.workers,
        metrics=args.metrics,
        leader_elect=args.leader_elect,
        leader_election_id=args.leader_election_id,
        leader_election_namespace=args.leader_election_namespace,
        max_rollouts=args.max_rollouts,
    )


def cmd_dev(args: argparse.Namespace) -> int:
    # the local control plane sits beside the core, imported lazily; its extra is not in the
    # operator's image
    try:
        from . import devcluster  # noqa: PLC0415
    except ImportError as exc:
        print(
            f"pythonapp dev: needs the devcluster extra ({exc.name} is missing): "
            "pip install 'pythonapp-operator[devcluster]'",
            file=sys.stderr,
        )
        return EXIT_INVALID

    if args.dev_command == "image":
        return cmd_dev_image(args)
    try:
        if args.dev_command == "up":
            devcluster.up(
                timeout=args.timeout,
                node_count=args.nodes,
                pods_per_node=args.pods_per_node,
                real_node=args.real_node,
            )
            print(f"cluster ready; kubeconfig: {devcluster.kubeconfig_path()}", file=sys.stderr)
        elif args.dev_command == "down":
            devcluster.down(log=print)
            print("cluster stopped", file=sys.stderr)
        elif args.dev_command == "status":
            status = devcluster.status()
            if args.json:
                print(json.dumps(status.to_json(), indent=2))
            else:
                components = status.to_json().get("components", [])
                if not components:
                    print("not running (start it with `pythonapp dev up`)", file=sys.stderr)
                for comp in components:
                    state = "alive" if comp.get("alive") else "DEAD"
                    pid, address = comp.get("pid"), comp.get("address", "")
                    print(f"{comp['name']:<26} {state:<6} pid {pid}  {address}")
                if status.sizing is not None:
                    size = status.sizing
                    print(f"{'nodes':<26} {size.nodes} kwok nodes x {size.pods_per_node} pods")
                if status.real_node is not None:
                    rn = status.real_node
                    print(
                        f"{'real node':<26} {rn['name']} at {rn['node_ip']} "
                        f"(bridge {rn['bridge']} {rn['subnet']}, cgroup /{rn['cgroup']})"
                    )
            return EXIT_OK if status.running else EXIT_INVALID
        elif args.dev_command == "kubeconfig":
            print(devcluster.kubeconfig_path())
    except devcluster.DevClusterError as exc:
        print(f"pythonapp dev {args.dev_command}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def cmd_dev_image(args: argparse.Namespace) -> int:
    """``pythonapp dev image build DIR`` / ``operator``: progress on stderr, the reference
    alone on stdout (``IMAGE=$(pythonapp dev image build examples/app)``)."""
    from pathlib import Path  # noqa: PLC0415

    from .devcluster import images, operator_image, registry  # noqa: PLC0415
    from .devcluster.errors import DevClusterError  # noqa: PLC0415

    def log(line: str) -> None:
        print(line, file=sys.stderr)

    try:
        if args.image_command == "operator":
            ref = operator_image.build(registry.of_cluster().address, log=log)
        else:
            ref = images.build(Path(args.dir), registry.of_cluster().address, args.name, log=log)
    except DevClusterError as exc:
        print(f"pythonapp dev image {args.image_command}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(ref)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pythonapp",
        description="Run Python services on Kubernetes, hardened by default.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "validate",
        help="check PythonApps in YAML files (- = stdin)",
        description=CHECK_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="YAML file, or - for stdin")
    p.add_argument(
        "--allow-empty",
        action="store_true",
        help="a file with no PythonApp is not an error (for globs over a whole repository)",
    )
    p.add_argument("--strict", action="store_true", help="warnings fail the run too (exit 1)")
    add_policy_option(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "render",
        help="print every object the operator would apply",
        description="Print, as multi-document YAML on stdout, every object the operator would\n"
        "apply for each PythonApp in FILE (the workload first: its Deployment, or a scheduled\n"
        "app's CronJob). FILE is checked as by\n"
        "`validate`; nothing is printed on stdout unless every PythonApp is valid.",
        epilog=CHECK_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE", help="YAML file, or - for stdin")
    p.add_argument("--strict", action="store_true", help="warnings fail the run too (exit 1)")
    add_route_options(p)
    add_policy_option(p, render=True)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("crd", help="print the PythonApp CustomResourceDefinition")
    p.add_argument(
        "--policy",
        action="store_true",
        help="print the PythonAppPolicy CRD instead (the platform policy, crds/"
        "pythonapppolicies.yaml)",
    )
    p.set_defaults(func=cmd_crd)

    p = sub.add_parser("operator", help="run the operator in the foreground")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace", "-n", action="append", default=[], metavar="NS", type=namespace_name
    )
    scope.add_argument("--all-namespaces", "-A", action="store_true")
    p.add_argument(
        "--health",
        default="127.0.0.1:8080",
        metavar="HOST:PORT",
        help="where /healthz, /readyz and /metrics listen (default 127.0.0.1:8080; "
        "0.0.0.0:8080 in a pod)",
    )
    p.add_argument(
        "--metrics",
        default=None,
        metavar="HOST:PORT",
        help="serve /metrics (and the health routes) on this address too (0.0.0.0:9090 in a pod)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="apps reconciled at once, and most requests in flight (16; PYTHONAPP_WORKERS)",
    )
    p.add_argument(
        "--max-rollouts",
        type=non_negative,
        default=None,
        metavar="N",
        help="rollouts an operator upgrade alone causes (a new render, not a spec change or a "
        "Secret rotation) run N apps at a time, each until its Deployment finished "
        "(10; 0 = no bound; PYTHONAPP_MAX_ROLLOUTS)",
    )
    p.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="only the replica holding the Lease reconciles; the others keep their cache warm "
        "and stand by (default on)",
    )
    p.add_argument(
        "--leader-election-id",
        default="pythonapp-operator",
        metavar="NAME",
        type=lease_name,
        help="the Lease's name (default pythonapp-operator)",
    )
    p.add_argument(
        "--leader-election-namespace",
        default=None,
        metavar="NS",
        type=namespace_name,
        help="the Lease's namespace (default: the pod's own, POD_NAMESPACE; else default)",
    )
    add_route_options(p)
    p.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    p.set_defaults(func=cmd_operator)

    p = sub.add_parser("dev", help="a local Kubernetes control plane without Docker")
    dev = p.add_subparsers(dest="dev_command", required=True, metavar="ACTION")
    up = dev.add_parser("up", help="start (idempotent); returns when the API and nodes are ready")
    up.add_argument("--timeout", type=float, default=300.0, help="seconds to wait (default 300)")
    up.add_argument(
        "--nodes",
        type=int,
        help="kwok nodes (default: $PYTHONAPP_DEV_NODES, else as recorded, else 3); "
        "a running cluster is resized",
    )
    up.add_argument(
        "--pods-per-node",
        type=int,
        help="pods each node holds (default: $PYTHONAPP_DEV_PODS_PER_NODE, else as recorded, "
        "else 2500)",
    )
    up.add_argument(
        "--real-node",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add (or with --no-real-node remove) one real node: containerd and a kubelet "
        "that run pods for real (root; packages from scripts/realnode-packages.sh); "
        "default: as recorded",
    )
    dev.add_parser("down", help="stop every process started by up and clean up")
    st = dev.add_parser("status", help="each component with its pid and address")
    st.add_argument("--json", action="store_true")
    dev.add_parser("kubeconfig", help="print the kubeconfig path")
    img = dev.add_parser("image", help="container images for the real node, without Docker")
    img_sub = img.add_subparsers(dest="image_command", required=True, metavar="ACTION")
    b = img_sub.add_parser(
        "build",
        help="build DIR's image, push it to the cluster's registry, print its digest reference",
        description="Build an image of the Python app in DIR (a Debian base with python3, the "
        "files of DIR under /app, user 10001, CMD python3 /app/app.py), push it to the dev "
        "cluster's loopback registry (`pythonapp dev up --real-node`) and print "
        "127.0.0.1:PORT/NAME@sha256:<digest> on stdout.",
    )
    b.add_argument("dir", metavar="DIR", help="the app's directory (e.g. examples/app)")
    b.add_argument("--name", help="the image's repository name (default: DIR's name)")
    img_sub.add_parser(
        "operator",
        help="build the operator's own image (as the Dockerfile says), print its reference",
        description="Build the operator's image without Docker from this checkout (the "
        "Debian base, requirements.lock installed with --require-hashes, the package, the "
        "Dockerfile's user, entrypoint and command), push it to the dev cluster's registry "
        "and print 127.0.0.1:PORT/pythonapp-operator@sha256:<digest> on stdout.",
    )
    p.set_defaults(func=cmd_dev)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: Any = args.func(args)
        sys.stdout.flush()  # here, not at exit: a closed pipe is then caught below
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader stopped (`pythonapp crd | head`): what it read is what it wanted. Python
        # would still flush stdout at exit and print a traceback: point stdout at /dev/null
        # first (the recipe of the signal module's documentation)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    return int(result)


if __name__ == "__main__":
    sys.exit(main())
