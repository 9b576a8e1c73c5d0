"""Run deploy/argocd/health.lua the way Argo CD runs it.

Argo CD evaluates resource health scripts with gopher-lua, a Lua 5.1 implementation, in a VM
that opens only the base, table and package libraries and a reduced os library; the object is
handed over as the global ``obj``, decoded from JSON (maps -> tables, lists -> tables indexed
from 1, null -> nil, numbers -> Lua numbers), and the script returns a table with ``status``
and ``message``. Here the reference Lua 5.1 interpreter (lupa) runs the script in a sandbox
that is, if anything, stricter: no string, math, io, os, debug or coroutine library and no
string methods, so a script that passes here does not lean on anything Argo CD lacks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lupa.lua51 as lua

REPO = Path(__file__).resolve().parents[2]
HEALTH_LUA = REPO / "deploy" / "argocd" / "health.lua"
PATCH = REPO / "deploy" / "argocd" / "argocd-cm-patch.yaml"
KEY = "resource.customizations.health.pythonapp.dev_PythonApp"
#: the health statuses Argo CD accepts from a script (anything else is an error there)
STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

_SANDBOX = """
debug.setmetatable("", nil)
string, math, io, os, debug, coroutine, dofile, loadfile, require = nil
"""


def _to_lua(runtime: Any, value: Any) -> Any:
    """JSON-like Python data as Argo CD decodes it into Lua values."""
    if isinstance(value, dict):
        table = runtime.table()
        for key, item in value.items():
            if item is not None:
                table[key] = _to_lua(runtime, item)
        return table
    if isinstance(value, list):
        table = runtime.table()
        for i, item in enumerate(value, start=1):
            table[i] = _to_lua(runtime, item)
        return table
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return float(value)  # Lua 5.1 has one number type (a double), as gopher-lua's LNumber
    raise TypeError(f"not JSON data: {value!r}")


def health(obj: dict[str, Any], script: str | None = None) -> dict[str, str]:
    """``{"status": ..., "message": ...}`` as Argo CD would show it for ``obj``."""
    runtime = lua.LuaRuntime(register_eval=False, register_builtins=False)
    runtime.execute(_SANDBOX)
    runtime.globals()["obj"] = _to_lua(runtime, obj)
    result = runtime.execute(script if script is not None else HEALTH_LUA.read_text())
    if result is None or lua.lua_type(result) != "table":
        raise AssertionError(f"the health script returned {result!r}, not a table")
    out = {"status": result["status"], "message": result["message"]}
    if out["status"] not in STATUSES:
        raise AssertionError(f"Argo CD refuses the health status {out['status']!r}")
    return out
