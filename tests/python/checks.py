"""The small harness the check scripts share: @check runs a function at once and
records whether it raised; finish() prints the results and sets the exit status that
tests/tests/clients.rs reads ('N passed, M failed')."""

import sys
import traceback

results = []


def check(fn):
    try:
        fn()
        results.append((fn.__name__, None))
    except Exception:  # noqa: BLE001 - every failure is reported
        results.append((fn.__name__, traceback.format_exc()))
    return fn


def finish():
    failed = [(n, tb) for n, tb in results if tb]
    for n, tb in results:
        print(("FAIL " if tb else "ok   ") + n)
    for n, tb in failed:
        print(f"--- {n}\n{tb}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)
