"""``python -m sabot agent ...``: an agent that runs Python map functions (sabot.agent)."""

import sys


def _main(argv):
    if not argv or argv[0] != "agent":
        print("usage: python -m sabot agent --coordinator URI [--slots N] [...]",
              file=sys.stderr)
        return 2
    from .agent import main
    return main(argv[1:])


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
