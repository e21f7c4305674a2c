"""Agents started from Python (``python -m sabot agent``): the C++ agent of the core, run inside
this interpreter so that it can call the jobs' Python functions.

How functions travel: by reference, as pickle does for functions. A distributed job's
function_map names its function ``module:qualname``; the agent imports the module and looks the
name up, so the function must be defined at module level in a module the agent can import (the
same code on every machine, on the agent's sys.path / PYTHONPATH). Lambdas, closures, functions
nested in functions and functions of the driver's ``__main__`` are refused when the job is
built, with an error saying so. The agent learns a function's output schema by calling it on an
empty batch of its input schema, as local mode does by default.
"""

from __future__ import annotations

import importlib
import sys

import pyarrow as pa

from . import _sabot
from .errors import SabotInvalid


def function_reference(fn):
    """``module:qualname`` of a module-level function that agents can import; SabotInvalid
    saying why otherwise."""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    module = getattr(fn, "__module__", None)
    what = f"map function {name or fn!r}"
    if not name or not module:
        raise SabotInvalid(f"{what}: in distributed mode a map function travels by reference "
                           "(module and name), and this callable has none; define a function "
                           "at module level in an importable module")
    if "<lambda>" in name or "<locals>" in name:
        raise SabotInvalid(f"{what} is a lambda or a closure; in distributed mode a map "
                           "function travels by reference (module and name) and agents import "
                           f"it: define it at module level (def ...) in a module the agents "
                           "can import")
    if module == "__main__":
        raise SabotInvalid(f"{what} is defined in __main__, which agents cannot import; in "
                           "distributed mode define it at module level in a module on the "
                           "agents' PYTHONPATH")
    try:
        found = _resolve_object(module, name)
    except (ImportError, AttributeError) as e:
        raise SabotInvalid(f"{what}: {module}:{name} cannot be imported ({e}); define it at "
                           "module level") from e
    if found is not fn:
        raise SabotInvalid(f"{what}: {module}:{name} names another object; define it at "
                           "module level under its own name")
    return f"{module}:{name}"


def _resolve_object(module, qualname):
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _resolve(reference):
    """The (call, output_schema) pair the core wants for function ``module:qualname``."""
    from .api import _Job
    module, sep, qualname = reference.partition(":")
    if not sep or not module or not qualname:
        raise ValueError(f"function name {reference!r} is not a reference 'module:qualname' "
                         "(a job submitted from Python in distributed mode names its functions "
                         "so)")
    fn = _resolve_object(module, qualname)
    if not callable(fn):
        raise TypeError(f"{reference} is not callable")
    # The same wrapper local mode uses: RecordBatch in, RecordBatch (or Table) out, schema
    # learned on an empty batch. Exceptions become the task's error, traceback included.
    return _Job._function(_AgentJob(), fn, None)


class _AgentJob:
    """What _Job._function needs: somewhere to record the function's exceptions."""

    def __init__(self):
        self.errors = []


class Agent:
    """One agent of a cluster in this process; ``serve()`` runs it until it is shut down or
    interrupted (Ctrl-C), ``close()`` leaves the cluster."""

    def __init__(self, coordinator, *, slots=1, name="python-agent", host="127.0.0.1", port=0,
                 memory_budget=0, spill_directory="", token="", token_file="", tls_ca="",
                 tls_cert="", tls_key="", verify_clients=False):
        self._agent = _sabot.PythonAgent(coordinator, slots, name, host, port, memory_budget,
                                         spill_directory, token, token_file, tls_ca, tls_cert,
                                         tls_key, verify_clients, _resolve)

    @property
    def location(self):
        return self._agent.location

    @property
    def agent_id(self):
        return self._agent.agent_id

    def wait_registered(self, timeout=10.0):
        return self._agent.wait_registered(timeout)

    def serve(self):
        self._agent.serve()

    def close(self):
        self._agent.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def main(argv=None):
    """``python -m sabot agent --coordinator URI --slots N [...]``."""
    import argparse
    parser = argparse.ArgumentParser(prog="python -m sabot agent",
                                     description="Run an agent of a Sabot cluster that also "
                                                 "runs the jobs' Python map functions")
    parser.add_argument("--coordinator", required=True, help="grpc+tcp://host:port")
    parser.add_argument("--slots", type=int, default=1, help="tasks run at once")
    parser.add_argument("--agent-id", default="python-agent", help="name in logs and errors")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    parser.add_argument("--memory-budget-mib", type=int, default=0,
                        help="memory budget for this agent's shuffles (0: the default)")
    parser.add_argument("--spill-dir", default="", help="spill folder (default: temporary)")
    parser.add_argument("--token", default="", help="the cluster's bearer token")
    parser.add_argument("--token-file", default="", help="file whose first line is the token")
    parser.add_argument("--tls-ca", default="", help="PEM roots of the cluster")
    parser.add_argument("--tls-cert", default="", help="PEM certificate of this agent")
    parser.add_argument("--tls-key", default="", help="its PEM key")
    parser.add_argument("--verify-clients", action="store_true", help="mutual TLS")
    args = parser.parse_args(argv)
    agent = Agent(args.coordinator, slots=args.slots, name=args.agent_id, host=args.host,
                  port=args.port, memory_budget=args.memory_budget_mib << 20,
                  spill_directory=args.spill_dir, token=args.token, token_file=args.token_file,
                  tls_ca=args.tls_ca, tls_cert=args.tls_cert, tls_key=args.tls_key,
                  verify_clients=args.verify_clients)
    print(f"sabot agent listening on {agent.location}", flush=True)

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    # SIGTERM stops the agent as Ctrl-C does: its tasks cancelled, its spill files removed.
    import signal
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        agent.serve()
    except KeyboardInterrupt:
        print(f"sabot agent '{args.agent_id}': interrupted; its tasks were cancelled",
              file=sys.stderr)
        return 130
    finally:
        agent.close()
    return 0
