"""What the startup hook (the ``.pth`` line) costs every Python process.

Starts ``python -c pass`` many times with the hook on and off, alternating so that machine
noise hits both alike, and prints the median wall time of each and the difference, plus the
import time ``-X importtime`` reports for the hook's modules.

    python benchmarks/startup_hook.py [--runs 60]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time


def start_once(env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    return (time.perf_counter() - began) * 1000


def hook_import_us(env: dict[str, str]) -> int:
    """Microseconds ``-X importtime`` attributes to the hook and the package it imports."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "pass"], env=env, capture_output=True, text=True
    )
    total = 0
    for line in result.stderr.splitlines():
        if "burr_streaming_chatbot" in line:
            total += int(line.split("|")[0].split(":")[1])  # self time of each module
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    on = {**os.environ, "BURR_DEMOS_AUTOLOAD": "1"}
    off = {**os.environ, "BURR_DEMOS_AUTOLOAD": "0"}
    with_hook, without, again = [], [], []
    for _ in range(args.runs):
        with_hook.append(start_once(on))
        without.append(start_once(off))
        again.append(start_once(off))  # an A/A arm: how far apart two identical runs land
    imports = sorted(hook_import_us(on) for _ in range(15))
    base = statistics.median(without)
    hooked = statistics.median(with_hook)
    print(f"python -c pass, {args.runs} runs each, median wall time")
    print(f"  hook off (BURR_DEMOS_AUTOLOAD=0): {base:8.2f} ms")
    print(f"  hook on:                          {hooked:8.2f} ms")
    print(
        f"  difference:                       {hooked - base:+8.2f} ms  (ratio {hooked / base:.3f})"
    )
    noise = statistics.median(again) - base
    print(f"  noise floor (hook off vs off):    {noise:+8.2f} ms")
    print(f"  -X importtime of the hook's modules (median of 15): {imports[7] / 1000:.2f} ms")


if __name__ == "__main__":
    main()
