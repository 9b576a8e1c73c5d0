"""The ``pythonapp`` command line: validate, render, crd, operator, dev.

A thin layer over the pure modules: it reads files, prints results and maps problems to exit
codes. It never prints a traceback for bad input: every problem is one line,
``FILE: NAMESPACE/NAME: FIELD.PATH: message``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from .crd import crd
from .models import DNS1123_LABEL, PythonApp
from .render import render
from .validation import is_pythonapp, validate_document
from .yamlio import YamlError, dump_all, load_all

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    return Path(path).read_text(encoding="utf-8")


def check_files(paths: Sequence[str], err: TextIO) -> tuple[list[PythonApp], bool]:
    """Validate every PythonApp in every file; print one line per problem to ``err``."""
    apps: list[PythonApp] = []
    ok = True
    for path in paths:
        source = "<stdin>" if path == "-" else path
        try:
            documents = load_all(_read(path))
        except (OSError, UnicodeDecodeError) as exc:
            print(f"{source}: cannot read: {getattr(exc, 'strerror', None) or exc}", file=err)
            ok = False
            continue
        except YamlError as exc:
            print(f"{source}: {exc}", file=err)
            ok = False
            continue
        for doc in documents:
            if not is_pythonapp(doc):
                continue
            app, problems = validate_document(doc)
            for problem in problems:
                print(problem.format(source), file=err)
            if app is None:
                ok = False
            else:
                apps.append(app)
    return apps, ok


def cmd_validate(args: argparse.Namespace) -> int:
    apps, ok = check_files(args.files, sys.stderr)
    if ok:
        print(f"{len(apps)} PythonApp(s) valid", file=sys.stderr)
    return EXIT_OK if ok else EXIT_INVALID


def cmd_render(args: argparse.Namespace) -> int:
    apps, ok = check_files([args.file], sys.stderr)
    if not ok:
        return EXIT_INVALID
    sys.stdout.write(dump_all(obj for app in apps for obj in render(app)))
    return EXIT_OK


def cmd_crd(_args: argparse.Namespace) -> int:
    sys.stdout.write(dump_all([crd()]))
    return EXIT_OK


def namespace_name(value: str) -> str:
    """``--namespace``: an exact namespace name; kopf's patterns ("team-*", "!x") would need a
    cluster-wide Namespace watch, which the namespaced installation does not grant."""
    if not re.match(DNS1123_LABEL, value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a namespace name (exact names only, no patterns)"
        )
    return value


def cmd_operator(args: argparse.Namespace) -> int:
    # kopf is imported only when the operator runs
    from .controller.runner import run_operator  # noqa: PLC0415

    return run_operator(
        namespaces=args.namespace,
        all_namespaces=args.all_namespaces,
        health=args.health,
        verbose=args.verbose,
        workers=args.workers,
        metrics=args.metrics,
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

    try:
        if args.dev_command == "up":
            devcluster.up(
                timeout=args.timeout, node_count=args.nodes, pods_per_node=args.pods_per_node
            )
            print(f"cluster ready; kubeconfig: {devcluster.kubeconfig_path()}", file=sys.stderr)
        elif args.dev_command == "down":
            devcluster.down()
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
            return EXIT_OK if status.running else EXIT_INVALID
        elif args.dev_command == "kubeconfig":
            print(devcluster.kubeconfig_path())
    except devcluster.DevClusterError as exc:
        print(f"pythonapp dev {args.dev_command}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pythonapp",
        description="Run Python services on Kubernetes, hardened by default.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check PythonApps in YAML files (- = stdin)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("render", help="print every object the operator would apply")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("crd", help="print the PythonApp CustomResourceDefinition")
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
        help="apps reconciled at once (default 16, or PYTHONAPP_WORKERS)",
    )
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
    dev.add_parser("down", help="stop every process started by up and clean up")
    st = dev.add_parser("status", help="each component with its pid and address")
    st.add_argument("--json", action="store_true")
    dev.add_parser("kubeconfig", help="print the kubeconfig path")
    p.set_defaults(func=cmd_dev)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: Any = args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    return int(result)


if __name__ == "__main__":
    sys.exit(main())
